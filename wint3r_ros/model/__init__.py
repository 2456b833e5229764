"""The WinT3R network (our implementation from the paper's facts), its configurations,
checkpoint loading and the parity check against the authors' numbers.

Modules (one concept each):
    config      WinT3RConfig: official() (the published model), tiny(), from_authors_kwargs()
    network     WinT3R: wires encoder, lockstep decoders, point head and camera head
    stream      StreamState, WindowOutput, step(): one window at a time, encoder cache, pool
    inference   online_inference / offline_inference (authors' semantics), training forward
    preprocess  preprocess(images) -> (input, CropMapping): resize, crop, normalise, map back
    checkpoint  load_model / save_checkpoint / convert_checkpoint (safe loading, clear errors)
    loader      load_reconstruction_model: what the nodes and process-bag load (weights + card)
    runtime     device=auto|cpu|cuda[:N], precision=auto|fp32|bf16|fp16|int8, torch.compile
    accuracy    deviation of a reduced precision from fp32 (points, confidence, poses), bounds
    parity      python -m wint3r_ros.model.parity FIXTURE.pt
    bench       wint3r-ros bench model
    blocks, attention, rope, point_head, camera_head, pose: the parts

Imports point one way: runtime and config are the base; the parts, then stream and inference,
then network; checkpoint -> network; loader -> checkpoint.

The narrow interface for the streaming engine:
    model = load_model(path, device=..., precision=...)   # or WinT3R(config)
    state = model.new_stream()
    out = model.step(state, images [S, 3, H, W], keys)     # -> WindowOutput
"""
