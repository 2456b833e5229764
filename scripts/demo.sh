#!/usr/bin/env bash
# `make demo`: a synthetic 3-camera bag -> sync_node + fusion_node over real DDS (sim time) ->
# recorded outputs -> a report folder (metrics JSON, trajectory PNG, every camera's depth with
# the NaN legend, the metric-scale state over time, PLY cloud).
#
#   1. wint3r-ros make-bag      render the synthetic rig with exact ground truth (+ rig YAML)
#   2. sync_node, fusion_node   started as `python -m ...` with use_sim_time (no ros2 launch here)
#   3. wint3r-ros record        records /tf, depth, cloud, odometry, path, status
#   4. wint3r-ros replay        plays the bag into the graph with /clock (slowed down so that a
#                               2-core CPU keeps up; stamps and /clock stay bag time)
#   5. wint3r-ros report        scores the recording against the bag's ground truth
#
# Settings (environment): DEMO_OUT (default out/demo), DEMO_FRAMES (80), DEMO_RATE (0.25),
# DEMO_SCENE (0). Every child process is stopped on exit, Ctrl-C included. Needs the environment
# of scripts/env.sh (`make demo` sources it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${DEMO_OUT:-$ROOT/out/demo}"
FRAMES="${DEMO_FRAMES:-80}"
RATE="${DEMO_RATE:-0.25}"
SCENE="${DEMO_SCENE:-0}"
LOGS="$OUT/logs"
PIDS=()

log() { echo "[demo] $*"; }

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget() {
  local kept=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}

stop() {  # stop one child politely (SIGTERM: background children of a script ignore SIGINT), wait for it, forget it
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget "$pid"
}

step() {  # run a step as a child and wait for it: a signal to this script reaches the trap at once
  "$@" <&0 &  # keep stdin (a here-document): a background command's stdin is /dev/null otherwise
  local pid=$! rc=0
  PIDS+=("$pid")
  wait "$pid" || rc=$?
  forget "$pid"
  return "$rc"
}

cd "$ROOT"
# A DDS domain of its own, so a second demo or the tests on this machine never cross-talk.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 1 ))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export PYTHONUNBUFFERED=1
rm -rf "$OUT"
mkdir -p "$LOGS"
T_START=$(date +%s)

WEIGHTS=$(python -c 'from wint3r_ros.weights import TINY_CHECKPOINT as t; print("trained" if t.is_file() else "none")')
if [ "$WEIGHTS" = trained ]; then
  # what the shipped checkpoint is, from its card (wint3r_ros/weights/tiny.json)
  TRAINED=$(python -c 'from wint3r_ros.weights import tiny_summary; print(tiny_summary())')
  WEIGHTS_NOTE="shipped tiny checkpoint (a small model $TRAINED: the numbers show the pipeline works, not accuracy)"
else
  WEIGHTS_NOTE="UNTRAINED: random weights, the numbers are MEANINGLESS"
fi
log "weights: $WEIGHTS_NOTE"

log "1/5 make-bag: $FRAMES frames x 3 cameras, 128x96, scene $SCENE -> $OUT/input"
step wint3r-ros make-bag "$OUT/input" --cameras 3 --frames "$FRAMES" --scene "$SCENE" > "$LOGS/make_bag.log"
RIG="$OUT/input.rig.yaml"
CAMS=(cam0 cam1 cam2)

log "2/5 starting sync_node and fusion_node (use_sim_time, domain $ROS_DOMAIN_ID)"
python -m wint3r_ros.ros.sync_node --ros-args --params-file config/rig.yaml \
  -p rig_file:="$RIG" -p use_sim_time:=true > "$LOGS/sync_node.log" 2>&1 &
PIDS+=($!)
python -m wint3r_ros.ros.fusion_node --ros-args --params-file config/wint3r.yaml \
  -p rig_file:="$RIG" -p use_sim_time:=true \
  -p queue_size:=100 -p latency_budget:=0.0 -r "~/windows:=/sync_node/windows" \
  > "$LOGS/fusion_node.log" 2>&1 &
PIDS+=($!)

TOPICS=(/tf /tf_static /fusion_node/cloud /fusion_node/odometry /fusion_node/path
        /fusion_node/status /sync_node/status)
for c in "${CAMS[@]}"; do
  TOPICS+=("/fusion_node/$c/depth" "/fusion_node/$c/camera_info" "/fusion_node/$c/confidence")
done
log "3/5 recording ${#TOPICS[@]} topics -> $OUT/outputs"
wint3r-ros record "$OUT/outputs" --use-sim-time --topics "${TOPICS[@]}" > "$LOGS/record.log" 2>&1 &
RECORD_PID=$!
PIDS+=("$RECORD_PID")

# Wait until both nodes are up and the recorder listens to fusion_node's outputs.
step python - <<'EOF'
import sys, time
import rclpy
rclpy.init()
node = rclpy.create_node("demo_wait")
deadline = time.monotonic() + 120
ok = False
while time.monotonic() < deadline:
    rclpy.spin_once(node, timeout_sec=0.2)
    if (node.count_subscribers("/cam0/image_raw") and node.count_subscribers("/sync_node/windows")
            and node.count_subscribers("/fusion_node/cloud") and node.count_subscribers("/tf")):
        ok = True
        break
node.destroy_node()
rclpy.try_shutdown()
sys.exit(0 if ok else "[demo] the nodes did not come up in 120 s: see the logs")
EOF

log "4/5 replaying the bag at rate $RATE with /clock"
PLAY=(/tf_static)   # the cameras; the ground truth stays in the bag for the report
for c in "${CAMS[@]}"; do PLAY+=("/$c/image_raw" "/$c/camera_info"); done
step wint3r-ros replay "$OUT/input" --rate "$RATE" --wait 10 --topics "${PLAY[@]}" \
  > "$LOGS/replay.log" 2>&1

# Let fusion_node finish the windows it has queued: wait until its frame count stops moving.
step python - <<'EOF'
import time
import rclpy
from rclpy.qos import QoSProfile
from wint3r_ros.msg import ReconstructionStatus
rclpy.init()
node = rclpy.create_node("demo_drain")
seen = {"frames": -1, "changed": time.monotonic()}
def on_status(msg):
    if msg.frames_out != seen["frames"]:
        seen.update(frames=msg.frames_out, changed=time.monotonic())
node.create_subscription(ReconstructionStatus, "/fusion_node/status", on_status, QoSProfile(depth=10))
deadline = time.monotonic() + 90
while time.monotonic() < deadline and time.monotonic() - seen["changed"] < 4.0:
    rclpy.spin_once(node, timeout_sec=0.2)
node.destroy_node()
rclpy.try_shutdown()
EOF
stop "$RECORD_PID"
sed 's/^/[record] /' "$LOGS/record.log" | head -3

log "5/5 report"
step wint3r-ros report --input "$OUT/input" --outputs "$OUT/outputs" --rig "$RIG" \
  --out "$OUT/report" --weights "$WEIGHTS_NOTE" > "$LOGS/report.log"
cat "$LOGS/report.log"
log "weights: $WEIGHTS_NOTE"
log "done in $(( $(date +%s) - T_START )) s; node logs in $LOGS"
