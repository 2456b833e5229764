"""A synthetic camera rig with exact ground truth: procedural rooms rendered by ray casting.

Nobody else has our robot's data, so tests, `make-bag` and the demo render their own: a room
(an axis-aligned box seen from inside) with procedurally textured walls, floor and ceiling, plus
random textured boxes (rotated about the vertical) and spheres. ``SceneConfig.seed`` selects the
scene. A rig of N cameras (`RigConfig`) moves along a smooth closed path that keeps clear of every
object; each render gives RGB, exact z-depth and the exact camera pose.

Conventions: world frame z up; the rig's base frame follows REP-103 (x forward, y left, z up);
camera optical frames follow REP-103 (z forward, x right, y down). Poses are 4x4 float64 and map
points from the named child frame into the parent (``T_world_cam`` = camera-to-world). Pixel
centres are at integer coordinates, so a pixel (u, v) looks along ``K^-1 [u, v, 1]``.

Shading is diffuse only (albedo x lights fixed in the world), so a surface point has the same
colour from every view: photometric losses and learned matchers see consistent texture.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from wint3r_ros.core.rig import Camera, Rig

__all__ = [
    "SceneConfig",
    "RigConfig",
    "Scene",
    "CameraFrame",
    "SyntheticRig",
    "build_scene",
    "build_rig",
    "RigFamily",
    "ROOM_FACES",
]

ROOM_FACES = 6        # object ids 0..5 are the room faces (-x, +x, -y, +y, floor, ceiling)
_EPS = 1e-6           # minimum ray parameter (avoids self-hits at the origin)
RAY_CHUNK = 1 << 15   # rays cast at once by render_views (bounds its working memory)
MAX_IMAGE_PIXELS = 4096 * 4096   # a synthetic view larger than this is refused
_NOISE_OCTAVES = 3


@dataclass(frozen=True)
class SceneConfig:
    """What the procedural scene contains; ``seed`` selects one scene deterministically.

    ``room_size`` (x, y, z extents in metres) is drawn from the seed when None. ``clearance`` is
    the free space (metres) kept between the rig's path (camera centres) and any object.
    """

    seed: int = 0
    num_boxes: int = 6
    num_spheres: int = 4
    room_size: tuple[float, float, float] | None = None
    clearance: float = 0.45


@dataclass(frozen=True)
class RigConfig:
    """The rig: N cameras on a base frame, their intrinsics, and how the rig moves.

    Cameras sit on a circle of radius ``radius`` (metres) around the base origin and look
    outwards: camera 0 forward, then alternately left and right by ``yaw_spacing_deg`` steps
    (3 cameras: forward, left, right), each pitched down by ``pitch_deg``. ``fov_deg`` is the
    horizontal field of view. The rig moves at ``speed`` m/s; frames are ``1 / rate_hz`` apart,
    starting at ``start_ns`` (source time, nanoseconds).

    ``mounts`` places the cameras freely instead (one ``(x, y, z, yaw_deg)`` per camera in the
    base frame, metres and degrees, yaw positive to the left; `RigFamily` draws them); then
    ``num_cameras`` must equal their number and ``radius`` bounds their distance from the base
    origin (the path keeps that much extra clearance).
    """

    num_cameras: int = 3
    width: int = 128
    height: int = 96
    fov_deg: float = 80.0
    radius: float = 0.12
    yaw_spacing_deg: float = 50.0
    pitch_deg: float = 5.0
    rate_hz: float = 10.0
    speed: float = 0.5
    start_ns: int = 1_700_000_000_000_000_000
    name: str = "synthetic_rig"
    base_frame: str = "base_link"
    mounts: tuple[tuple[float, float, float, float], ...] | None = None

    def __post_init__(self) -> None:
        from wint3r_ros.errors import ConfigError, brief

        if self.mounts is not None:
            if len(self.mounts) != self.num_cameras or any(len(m) != 4 for m in self.mounts):
                raise ConfigError(f"RigConfig.mounts must hold num_cameras={self.num_cameras} "
                                  f"(x, y, z, yaw_deg) entries, got {self.mounts!r}")
            if not all(math.isfinite(v) for m in self.mounts for v in m):
                raise ConfigError(f"RigConfig.mounts must be finite, got {self.mounts!r}")

        if isinstance(self.num_cameras, bool) or not isinstance(self.num_cameras, int) \
                or self.num_cameras < 1:
            raise ConfigError(f"RigConfig.num_cameras must be a positive integer, "
                              f"got {self.num_cameras!r}")
        for fld in ("width", "height"):
            v = getattr(self, fld)
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise ConfigError(f"RigConfig.{fld} must be an integer >= 2, got {brief(v)}")
        if self.width * self.height > MAX_IMAGE_PIXELS:
            raise ConfigError(f"RigConfig: {self.width}x{self.height} images are larger than the "
                              f"synthetic renderer makes ({MAX_IMAGE_PIXELS} pixels, 4096x4096)")
        if not 1.0 <= self.fov_deg <= 170.0:
            raise ConfigError(f"RigConfig.fov_deg must be in [1, 170], got {self.fov_deg!r}")
        for fld in ("rate_hz", "speed", "radius"):
            v = getattr(self, fld)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"RigConfig.{fld} must be a positive number, got {v!r}")


@dataclass(frozen=True)
class CameraFrame:
    """One rendered image with its exact ground truth.

    image: [H, W, 3] uint8 RGB; depth: [H, W] float32 z-depth in metres (distance along the
    optical axis, every pixel valid: the room is closed); T_world_cam, T_world_base: [4, 4].
    """

    camera_index: int
    camera_name: str
    frame_index: int
    stamp_ns: int
    image: np.ndarray
    depth: np.ndarray
    T_world_cam: np.ndarray
    T_world_base: np.ndarray

    @property
    def stamp(self) -> float:
        """Stamp in seconds (source time)."""
        return self.stamp_ns * 1e-9


# --------------------------------------------------------------------------------------------
# Small rotation helpers (local: core.geometry is richer, these keep this module self-contained)


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _pose(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


# --------------------------------------------------------------------------------------------
# Procedural texture


def _hash01(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, salt: np.ndarray) -> np.ndarray:
    """Deterministic pseudo-random value in [0, 1) per integer lattice point (and salt)."""
    m = np.uint64(0xFFFFFFFF)
    h = (ix.astype(np.uint64) * np.uint64(73856093)) ^ (iy.astype(np.uint64) * np.uint64(19349663))
    h = (h ^ (iz.astype(np.uint64) * np.uint64(83492791)) ^ (salt.astype(np.uint64) *
                                                              np.uint64(2654435761))) & m
    h = (h ^ (h >> np.uint64(16))) * np.uint64(0x45D9F3B) & m
    h = (h ^ (h >> np.uint64(16))) * np.uint64(0x45D9F3B) & m
    h = h ^ (h >> np.uint64(16))
    return h.astype(np.float64) / 4294967296.0


def _value_noise(q: np.ndarray, salt: np.ndarray) -> np.ndarray:
    """Smooth 3-D value noise in [0, 1]: q [M, 3] (lattice units), salt [M] -> [M]."""
    base = np.floor(q)
    f = q - base
    f = f * f * (3.0 - 2.0 * f)             # smoothstep
    i = base.astype(np.int64)
    out = np.zeros(len(q))
    for dx in (0, 1):
        wx = f[:, 0] if dx else 1.0 - f[:, 0]
        for dy in (0, 1):
            wy = f[:, 1] if dy else 1.0 - f[:, 1]
            for dz in (0, 1):
                wz = f[:, 2] if dz else 1.0 - f[:, 2]
                out += wx * wy * wz * _hash01(i[:, 0] + dx, i[:, 1] + dy, i[:, 2] + dz, salt)
    return out


@dataclass(frozen=True)
class _Materials:
    """Per-object texture parameters, indexed by object id (arrays of length num_objects)."""

    color_a: np.ndarray      # [M, 3] in [0, 1]
    color_b: np.ndarray      # [M, 3]
    period: np.ndarray       # [M] checker period, metres
    noise_freq: np.ndarray   # [M] cycles per metre of the lowest noise octave
    noise_amp: np.ndarray    # [M] in [0, 1]
    gradient: np.ndarray     # [M, 3] brightness change per metre (local coordinates)
    offset: np.ndarray       # [M, 3] texture-space offset
    stripes: np.ndarray      # [M] stripe amplitude (thin bands along local x)
    pattern: np.ndarray      # [M] 0 checker, 1 blobs (thresholded noise), 2 bands


def _random_materials(rng: np.random.Generator, count: int) -> _Materials:
    hue = rng.uniform(0, 1, count)
    sat = rng.uniform(0.35, 0.85, count)

    def hsv(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
        k = (np.stack([h * 6 + 5, h * 6 + 3, h * 6 + 1], -1)) % 6
        return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4 - k), 0, 1)

    color_a = hsv(hue, sat, rng.uniform(0.6, 0.95, count))
    color_b = hsv((hue + rng.uniform(0.1, 0.5, count)) % 1, sat * rng.uniform(0.3, 1.0, count),
                  rng.uniform(0.2, 0.55, count))
    return _Materials(
        color_a=color_a, color_b=color_b,
        period=rng.uniform(0.2, 0.6, count),
        noise_freq=rng.uniform(1.5, 4.0, count),
        noise_amp=rng.uniform(0.25, 0.6, count),
        gradient=rng.normal(0, 0.08, (count, 3)),
        offset=rng.uniform(0, 10, (count, 3)),
        stripes=rng.uniform(0, 0.25, count) * (rng.uniform(0, 1, count) < 0.5),
        pattern=rng.choice(3, size=count, p=[0.45, 0.35, 0.2]),
    )


# --------------------------------------------------------------------------------------------
# Scene


@dataclass(frozen=True)
class Scene:
    """The geometry and materials of one procedural room (built by `build_scene`).

    Object ids: 0..5 the room faces, then ``boxes``, then ``spheres``. Boxes are oriented about
    the vertical: centre [B, 3], half extents [B, 3], yaw [B] (radians). Spheres: centre [S, 3],
    radius [S]. ``lights`` [Lt, 3] are point lights (world), ``ambient`` a constant term.
    """

    room_min: np.ndarray
    room_max: np.ndarray
    box_centre: np.ndarray
    box_half: np.ndarray
    box_yaw: np.ndarray
    sphere_centre: np.ndarray
    sphere_radius: np.ndarray
    materials: _Materials
    lights: np.ndarray
    ambient: float = 0.35

    @property
    def num_objects(self) -> int:
        return ROOM_FACES + len(self.box_centre) + len(self.sphere_centre)

    # -- ray casting ---------------------------------------------------------------------------
    def intersect(self, origins: np.ndarray, dirs: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Closest hit of rays ``origins + t * dirs`` (origins, dirs [R, 3], dirs need not be
        unit) from inside the room: t [R] (in units of |dirs|), object id [R], unit normal
        [R, 3] facing the ray. Every ray from inside the room hits something."""
        o = np.asarray(origins, dtype=np.float64)
        d = np.asarray(dirs, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / d                                                   # (R, 3)
            # Room: exit distance through the box, per axis.
            t_axis = np.where(d > 0, (self.room_max - o) * inv,
                              np.where(d < 0, (self.room_min - o) * inv, np.inf))
            axis = np.argmin(t_axis, axis=1)
            rows = np.arange(len(o))
            t = t_axis[rows, axis]
            positive = d[rows, axis] > 0
            obj = 2 * axis + positive.astype(np.int64)                     # -x,+x,-y,+y,-z,+z
            normal = np.zeros_like(o)
            normal[rows, axis] = np.where(positive, -1.0, 1.0)              # inward

            if len(self.box_centre):
                c, s = np.cos(self.box_yaw), np.sin(self.box_yaw)          # (B,)
                rel = [o[:, k, None] - self.box_centre[None, :, k] for k in range(3)]
                # Local coordinates (R_z(yaw)^T applied), one (R, B) array per axis.
                lo = [c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1], rel[2]]
                ld = [c * d[:, 0, None] + s * d[:, 1, None],
                      -s * d[:, 0, None] + c * d[:, 1, None],
                      np.broadcast_to(d[:, 2, None], rel[0].shape)]
                t_near = np.full(rel[0].shape, -np.inf)
                t_far = np.full(rel[0].shape, np.inf)
                near_axis = np.zeros(rel[0].shape, dtype=np.int64)
                for k in range(3):
                    h = self.box_half[None, :, k]
                    t1 = (-h - lo[k]) / ld[k]
                    t2 = (h - lo[k]) / ld[k]
                    lo_k = np.fmin(t1, t2)          # fmin/fmax drop the NaN of 0/0 (parallel)
                    hi_k = np.fmax(t1, t2)
                    larger = lo_k > t_near
                    near_axis = np.where(larger, k, near_axis)
                    t_near = np.where(larger, lo_k, t_near)
                    t_far = np.fmin(t_far, hi_k)
                hit = (t_near <= t_far) & (t_near > _EPS)
                tb = np.where(hit, t_near, np.inf)                          # (R, B)
                best = np.argmin(tb, axis=1)
                tbest = tb[rows, best]
                closer = tbest < t
                if np.any(closer):
                    r = rows[closer]
                    b = best[closer]
                    face = near_axis[r, b]                                  # local axis hit
                    ldir = np.stack([ld[k][r, b] for k in range(3)], -1)
                    nl = np.zeros((len(r), 3))
                    nl[np.arange(len(r)), face] = -np.sign(ldir[np.arange(len(r)), face])
                    cb, sb = c[b], s[b]
                    normal[r] = np.stack([cb * nl[:, 0] - sb * nl[:, 1],
                                          sb * nl[:, 0] + cb * nl[:, 1], nl[:, 2]], -1)
                    t = np.where(closer, tbest, t)
                    obj[r] = ROOM_FACES + b

            if len(self.sphere_centre):
                rel = o[:, None, :] - self.sphere_centre[None]             # (R, S, 3)
                a = np.einsum("rk,rk->r", d, d)[:, None]
                b = np.einsum("rsk,rk->rs", rel, d)
                cc = np.einsum("rsk,rsk->rs", rel, rel) - self.sphere_radius[None] ** 2
                disc = b * b - a * cc
                ts = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
                ts = np.where((disc >= 0) & (ts > _EPS), ts, np.inf)
                best = np.argmin(ts, axis=1)
                tbest = ts[rows, best]
                closer = tbest < t
                if np.any(closer):
                    r = rows[closer]
                    s_id = best[closer]
                    p = o[r] + tbest[closer, None] * d[r]
                    normal[r] = (p - self.sphere_centre[s_id]) / self.sphere_radius[s_id, None]
                    t = np.where(closer, tbest, t)
                    obj[r] = ROOM_FACES + len(self.box_centre) + s_id
        return t, obj, normal

    # -- shading -------------------------------------------------------------------------------
    def _local_coords(self, points: np.ndarray, obj: np.ndarray, normal: np.ndarray
                      ) -> np.ndarray:
        """Texture coordinates [R, 3]: object-local, the face-normal axis zeroed on flat faces."""
        q = points.copy()
        nb = len(self.box_centre)
        is_box = (obj >= ROOM_FACES) & (obj < ROOM_FACES + nb)
        is_sphere = obj >= ROOM_FACES + nb
        flat_normal = normal.copy()
        if np.any(is_box):
            b = obj[is_box] - ROOM_FACES
            rel = points[is_box] - self.box_centre[b]
            c, s = np.cos(self.box_yaw[b]), np.sin(self.box_yaw[b])
            q[is_box] = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1],
                                  rel[:, 2]], -1)
            n = normal[is_box]
            flat_normal[is_box] = np.stack([c * n[:, 0] + s * n[:, 1],
                                            -s * n[:, 0] + c * n[:, 1], n[:, 2]], -1)
        if np.any(is_sphere):
            s_id = obj[is_sphere] - ROOM_FACES - nb
            q[is_sphere] = points[is_sphere] - self.sphere_centre[s_id]
        # Flat faces: drop the coordinate along the face normal so the texture is 2-D on the face
        # (and free of rounding noise where the face sits on a checker boundary).
        keep = np.where(is_sphere[:, None], 1.0, 1.0 - np.abs(np.round(flat_normal)))
        return q * keep

    def albedo(self, points: np.ndarray, obj: np.ndarray, normal: np.ndarray) -> np.ndarray:
        """Surface colour [R, 3] in [0, 1] at hit points [R, 3] of objects obj [R]."""
        m = self.materials
        q = self._local_coords(points, obj, normal) + m.offset[obj]
        period = m.period[obj][:, None]
        noise = np.zeros(len(q))
        freq = m.noise_freq[obj][:, None]
        amp_total = 0.0
        for octave in range(_NOISE_OCTAVES):
            w = 0.5 ** octave
            noise += w * _value_noise(q * freq * (2 ** octave), obj * 7 + octave)
            amp_total += w
        noise /= amp_total                                               # [0, 1]
        # Two-colour pattern: checker tiles, noise blobs with soft edges, or bands.
        checker = (np.floor(q / period).astype(np.int64).sum(axis=1) & 1).astype(np.float64)
        blobs = np.clip((noise - 0.5) * 6.0 + 0.5, 0.0, 1.0)
        bands = (np.sin(q.sum(axis=1) * (2 * math.pi) / period[:, 0]) > 0).astype(np.float64)
        pattern = m.pattern[obj]
        mix = np.where(pattern == 0, checker, np.where(pattern == 1, blobs, bands))
        color = m.color_b[obj] + mix[:, None] * (m.color_a[obj] - m.color_b[obj])
        # Brightness: fine noise, a gentle gradient, optional thin stripes.
        fine = _value_noise(q * freq * 6.0, obj * 7 + 5)
        amp = m.noise_amp[obj]
        shade = (1.0 - 0.5 * amp) + amp * (0.5 * noise + 0.5 * fine)
        shade *= 1.0 + np.einsum("rk,rk->r", m.gradient[obj], q - m.offset[obj])
        shade *= 1.0 - m.stripes[obj] * (np.sin(q[:, 0] * 25.0) > 0.7)
        return np.clip(color * shade[:, None], 0.0, 1.0)

    def shade(self, points: np.ndarray, obj: np.ndarray, normal: np.ndarray) -> np.ndarray:
        """Diffuse colour [R, 3] in [0, 1]: albedo x (ambient + point lights); view-independent."""
        light = np.full(len(points), self.ambient)
        for lp in self.lights:
            to_light = lp - points
            dist2 = np.einsum("rk,rk->r", to_light, to_light)
            cos = np.einsum("rk,rk->r", normal, to_light) / np.sqrt(dist2)
            light += np.maximum(cos, 0.0) * 0.9 / (1.0 + 0.08 * dist2)
        return np.clip(self.albedo(points, obj, normal) * light[:, None], 0.0, 1.0)

    def render_view(self, K: np.ndarray, width: int, height: int, T_world_cam: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Render one pinhole view: image [H, W, 3] uint8 RGB and z-depth [H, W] float32."""
        images, depths = self.render_views([K], width, height, [T_world_cam])
        return images[0], depths[0]

    def render_views(self, Ks: list[np.ndarray], width: int, height: int,
                     T_world_cams: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Render V views of the same size: images [V, H, W, 3] uint8 RGB, z-depth [V, H, W]
        float32 (metres along each optical axis).

        Rays are cast ``RAY_CHUNK`` at a time, so the working memory (a few hundred bytes per
        ray and object) stays bounded whatever the image size: only the outputs grow with it
        (a 1920x1080 view took 2.5 GB when every ray was cast at once)."""
        views = len(Ks)
        images = np.empty((views, height * width, 3), np.uint8)
        depths = np.empty((views, height * width), np.float32)
        for view, (K, T) in enumerate(zip(Ks, T_world_cams)):
            K = np.asarray(K, np.float64)
            R, origin = np.asarray(T, np.float64)[:3, :3], np.asarray(T, np.float64)[:3, 3]
            for start in range(0, height * width, RAY_CHUNK):
                idx = np.arange(start, min(start + RAY_CHUNK, height * width))
                pix = np.stack([idx % width, idx // width, np.ones(len(idx))], 0).astype(
                    np.float64)                                             # (3, R)
                rays_cam = np.linalg.solve(K, pix)                          # z = 1
                d = (R @ rays_cam).T                                        # (R, 3)
                o = np.broadcast_to(origin, d.shape)
                # With camera-frame directions of unit z, the ray parameter t is the z-depth.
                t, obj, normal = self.intersect(o, d)
                rgb = self.shade(o + t[:, None] * d, obj, normal)
                images[view, idx] = np.round(rgb * 255.0).astype(np.uint8)
                depths[view, idx] = t
        return images.reshape(views, height, width, 3), depths.reshape(views, height, width)


def _draw_room(rng: np.random.Generator, config: SceneConfig) -> np.ndarray:
    if config.room_size is not None:
        size = np.asarray(config.room_size, dtype=np.float64)
        if size.shape != (3,) or not np.all(size > 1.0):
            from wint3r_ros.errors import ConfigError
            raise ConfigError(f"SceneConfig.room_size must be three extents > 1 m, "
                              f"got {config.room_size!r}")
        return size
    return np.array([rng.uniform(5.0, 8.0), rng.uniform(4.0, 6.5), rng.uniform(2.6, 3.2)])


@dataclass(frozen=True)
class _Path:
    """The rig's smooth closed path: an ellipse around the room centre with gentle wobble."""

    centre: np.ndarray        # [3]: x, y of the ellipse centre; z the mean height
    axes: np.ndarray          # [2] semi-axes, metres
    omega: float              # rad/s along the ellipse (sign: direction)
    phase: np.ndarray         # [5] phases of the ellipse and the wobbles

    def base_pose(self, t: float) -> np.ndarray:
        """T_world_base [4, 4] at time t (seconds since the first frame)."""
        th = self.phase[0] + self.omega * t
        ax, ay = self.axes
        p = np.array([self.centre[0] + ax * math.cos(th), self.centre[1] + ay * math.sin(th),
                      self.centre[2] + 0.08 * math.sin(0.6 * t + self.phase[1])])
        vel = np.array([-ax * math.sin(th), ay * math.cos(th)]) * self.omega
        yaw = math.atan2(vel[1], vel[0]) + 0.25 * math.sin(0.45 * t + self.phase[2])
        pitch = 0.05 * math.sin(0.9 * t + self.phase[3])
        roll = 0.03 * math.sin(1.3 * t + self.phase[4])
        return _pose(_rot_z(yaw) @ _rot_y(pitch) @ _rot_x(roll), p)

    def samples(self, n: int = 256) -> np.ndarray:
        """Points [n, 3] covering one loop of the path (heights at the extremes of the bob)."""
        th = np.linspace(0, 2 * math.pi, n, endpoint=False)
        ax, ay = self.axes
        return np.stack([self.centre[0] + ax * np.cos(th), self.centre[1] + ay * np.sin(th),
                         np.full(n, self.centre[2])], -1)


def _draw_path(rng: np.random.Generator, room: np.ndarray, rig: RigConfig) -> _Path:
    half = room / 2
    margin = rig.radius + 0.8
    axes = np.array([rng.uniform(0.45, 0.6) * (half[0] - margin) + 0.3,
                     rng.uniform(0.45, 0.6) * (half[1] - margin) + 0.3])
    axes = np.minimum(axes, half[:2] - margin)
    centre = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2),
                       rng.uniform(1.1, 1.5)])
    mean_r = float(axes.mean())
    omega = rig.speed / mean_r * (1 if rng.uniform() < 0.5 else -1)
    return _Path(centre=centre, axes=axes, omega=omega, phase=rng.uniform(0, 2 * math.pi, 5))


def build_scene(config: SceneConfig, rig: RigConfig | None = None) -> tuple[Scene, _Path]:
    """The scene and rig path for ``config.seed``: objects are rejection-sampled so that none
    comes closer than ``config.clearance`` (+ the rig radius) to the path."""
    rig = rig or RigConfig()
    rng = np.random.default_rng(np.random.SeedSequence([int(config.seed), 0x57A7]))
    size = _draw_room(rng, config)
    room_min = np.array([-size[0] / 2, -size[1] / 2, 0.0])
    room_max = np.array([size[0] / 2, size[1] / 2, size[2]])
    path = _draw_path(np.random.default_rng(np.random.SeedSequence([int(config.seed), 1])),
                      size, rig)
    track = path.samples()
    keep_out = config.clearance + rig.radius + 0.1       # + the path's vertical bob

    def clear(centre: np.ndarray, bound: float) -> bool:
        return float(np.min(np.linalg.norm(track - centre, axis=1))) - bound > keep_out

    boxes: list[tuple[np.ndarray, np.ndarray, float]] = []
    for _ in range(config.num_boxes):
        for _attempt in range(60):
            half = np.array([rng.uniform(0.15, 0.5), rng.uniform(0.15, 0.5),
                             rng.uniform(0.15, 0.6)])
            bound = float(np.linalg.norm(half))
            xy = rng.uniform(room_min[:2] + bound, room_max[:2] - bound)
            z = half[2] if rng.uniform() < 0.7 else rng.uniform(0.6, size[2] - 0.6)
            centre = np.array([xy[0], xy[1], z])
            if np.all(room_max[:2] - bound > room_min[:2] + bound) and clear(centre, bound) \
                    and centre[2] + half[2] < size[2]:
                boxes.append((centre, half, float(rng.uniform(0, math.pi))))
                break
    spheres: list[tuple[np.ndarray, float]] = []
    for _ in range(config.num_spheres):
        for _attempt in range(60):
            r = float(rng.uniform(0.15, 0.45))
            xy = rng.uniform(room_min[:2] + r, room_max[:2] - r)
            z = r if rng.uniform() < 0.5 else rng.uniform(r + 0.3, size[2] - r - 0.2)
            centre = np.array([xy[0], xy[1], z])
            if clear(centre, r):
                spheres.append((centre, r))
                break
    materials = _random_materials(rng, ROOM_FACES + len(boxes) + len(spheres))
    lights = np.array([[0.0, 0.0, size[2] - 0.3],
                       [room_min[0] * 0.5, room_max[1] * 0.5, size[2] - 0.4]])
    scene = Scene(
        room_min=room_min, room_max=room_max,
        box_centre=np.array([b[0] for b in boxes]).reshape(-1, 3),
        box_half=np.array([b[1] for b in boxes]).reshape(-1, 3),
        box_yaw=np.array([b[2] for b in boxes]).reshape(-1),
        sphere_centre=np.array([s[0] for s in spheres]).reshape(-1, 3),
        sphere_radius=np.array([s[1] for s in spheres]).reshape(-1),
        materials=materials, lights=lights,
    )
    return scene, path


def build_rig(config: RigConfig) -> Rig:
    """The calibrated `Rig` for ``config``: identical pinhole intrinsics, no distortion,
    cameras ``cam0..`` on topics ``/cam{i}/image_raw`` with optical frames ``cam{i}_optical``."""
    fx = (config.width / 2.0) / math.tan(math.radians(config.fov_deg) / 2.0)
    K = np.array([[fx, 0.0, (config.width - 1) / 2.0],
                  [0.0, fx, (config.height - 1) / 2.0],
                  [0.0, 0.0, 1.0]])
    step = math.radians(config.yaw_spacing_deg)
    pitch = math.radians(config.pitch_deg)
    cameras = []
    for i in range(config.num_cameras):
        k = (i + 1) // 2
        yaw = 0.0 if i == 0 else (k * step if i % 2 == 1 else -k * step)
        if config.mounts is not None:
            yaw = math.radians(config.mounts[i][3])
        forward = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw),
                            -math.sin(pitch)])
        right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
        down = np.cross(forward, right)
        R = np.stack([right, down, forward], axis=1)     # columns: optical x, y, z in base
        centre = np.array([config.radius * math.cos(yaw), config.radius * math.sin(yaw),
                           0.02 * (i % 2)])
        if config.mounts is not None:
            centre = np.array(config.mounts[i][:3], dtype=np.float64)
        cameras.append(Camera(
            name=f"cam{i}", topic=f"/cam{i}/image_raw", frame_id=f"cam{i}_optical",
            camera_info_topic=f"/cam{i}/camera_info", width=config.width,
            height=config.height, K=K, distortion_model="none",
            distortion_coefficients=np.zeros(0), T_base_camera=_pose(R, centre)))
    return Rig(name=config.name, base_frame=config.base_frame, cameras=cameras)


@dataclass(frozen=True)
class RigFamily:
    """Random rigs for training and evaluation: one `RigConfig` per scene seed, drawn from it.

    A member has 1 to ``max_cameras`` cameras side by side along the base's y axis, equally
    spaced, the outermost two ``baseline_m`` apart (drawn uniformly), their yaws spread evenly
    over a total of
    ``spread_deg`` (drawn uniformly; with probability ``stereo_share`` the spread is 0: forward
    stereo / multi-baseline arrays), pitched down by ``pitch_deg``. Cameras are numbered as the
    demo rig's: cam0 in the middle slot, then alternately left and right. With probability
    ``demo_share`` the member is the demo rig itself (`RigConfig()`'s 3-camera layout).

    Held-out geometry: members drawn with ``held_out=False`` never have a yaw spread inside
    ``held_out_spread_deg`` (such a draw is moved out of the band), while ``held_out=True``
    draws every second member inside it, so test rigs include geometries training never saw.
    """

    max_cameras: int = 4
    baseline_m: tuple[float, float] = (0.05, 0.40)
    spread_deg: tuple[float, float] = (0.0, 120.0)
    stereo_share: float = 0.25
    demo_share: float = 0.15
    pitch_deg: tuple[float, float] = (0.0, 10.0)
    held_out_spread_deg: tuple[float, float] = (60.0, 75.0)

    def member(self, seed: int, base: RigConfig, held_out: bool = False) -> RigConfig:
        """The rig of scene ``seed``: ``base``'s image size, field of view, rate and speed with a
        drawn layout. Deterministic in (seed, held_out)."""
        import dataclasses

        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x816F]))
        demo = RigConfig()
        if rng.uniform() < self.demo_share:
            return dataclasses.replace(base, num_cameras=demo.num_cameras, mounts=None,
                                       radius=demo.radius, yaw_spacing_deg=demo.yaw_spacing_deg,
                                       pitch_deg=demo.pitch_deg)
        lo, hi = self.held_out_spread_deg
        in_band = held_out and seed % 2 == 0
        n = int(rng.integers(2 if in_band else 1, self.max_cameras + 1))
        baseline = float(rng.uniform(*self.baseline_m))
        if in_band:
            spread = float(rng.uniform(lo, hi))
        elif rng.uniform() < self.stereo_share:
            spread = 0.0
        else:
            spread = float(rng.uniform(*self.spread_deg))
            while not held_out and lo <= spread < hi:  # the held-out band stays out of training
                spread = float(rng.uniform(*self.spread_deg))
        pitch = float(rng.uniform(*self.pitch_deg))
        slots = [(i + 1) // 2 * (1 if i % 2 else -1) for i in range(n)]  # 0, +1, -1, +2
        width = max(slots) - min(slots)
        mid = (max(slots) + min(slots)) / 2
        gap = baseline / max(width, 1)
        mounts = []
        for i, s in enumerate(slots):
            yaw = 0.0 if width == 0 else (s - mid) * spread / width
            mounts.append((0.05 * math.cos(math.radians(yaw)), (s - mid) * gap,
                           0.02 * (i % 2), yaw))
        radius = max(0.06, max(math.hypot(m[0], m[1]) for m in mounts))
        return dataclasses.replace(base, num_cameras=n, mounts=tuple(mounts), radius=radius,
                                   pitch_deg=pitch)


class SyntheticRig:
    """A rig of N cameras moving through one procedural room, rendered with exact ground truth.

    ``render(k)`` gives frame k of every camera (the rig at time ``k / rate_hz``); ``frames(n)``
    iterates over the first n frames. Same configs -> bit-identical output.
    """

    def __init__(self, scene: SceneConfig | None = None, rig: RigConfig | None = None) -> None:
        self.scene_config = scene or SceneConfig()
        self.rig_config = rig or RigConfig()
        self.scene, self._path = build_scene(self.scene_config, self.rig_config)
        self.rig = build_rig(self.rig_config)

    def time_s(self, frame_index: int) -> float:
        """Seconds since the first frame."""
        return frame_index / self.rig_config.rate_hz

    def stamp_ns(self, frame_index: int) -> int:
        """Source stamp of frame ``frame_index`` in nanoseconds."""
        return self.rig_config.start_ns + round(frame_index * 1e9 / self.rig_config.rate_hz)

    def T_world_base(self, frame_index: int) -> np.ndarray:
        """Pose [4, 4] of the rig's base frame in the world at frame ``frame_index``."""
        return self._path.base_pose(self.time_s(frame_index))

    def trajectory(self, num_frames: int) -> np.ndarray:
        """Base poses [F, 4, 4] of the first ``num_frames`` frames."""
        return np.stack([self.T_world_base(k) for k in range(num_frames)])

    def render(self, frame_index: int) -> list[CameraFrame]:
        """Frame ``frame_index`` of every camera, in rig order."""
        T_wb = self.T_world_base(frame_index)
        cams = self.rig.cameras
        T_wc = [T_wb @ cam.T_base_camera for cam in cams]
        images, depths = self.scene.render_views([cam.K for cam in cams],
                                                 self.rig_config.width, self.rig_config.height,
                                                 T_wc)
        stamp = self.stamp_ns(frame_index)
        return [CameraFrame(camera_index=i, camera_name=cam.name, frame_index=frame_index,
                            stamp_ns=stamp, image=images[i], depth=depths[i],
                            T_world_cam=T_wc[i], T_world_base=T_wb)
                for i, cam in enumerate(cams)]

    def frames(self, num_frames: int, start: int = 0) -> Iterator[list[CameraFrame]]:
        """Frames ``start .. start + num_frames - 1``, each a list of CameraFrames in rig order."""
        for k in range(start, start + num_frames):
            yield self.render(k)
