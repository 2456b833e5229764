# shellcheck shell=bash
# Source me: `source scripts/env.sh` gives a shell the environment `make test` uses:
# the project's venv, the ROS 2 wheels' prefix (or your sourced ROS 2), and install/ from colcon.
_wint3r_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
if [ ! -x "$_wint3r_root/.venv/bin/python" ]; then
  echo "wint3r_ros: no .venv yet; run 'make setup' first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "$_wint3r_root/.venv/bin/activate"
if [ -z "${ROS_DISTRO:-}" ]; then
  # ROS 2 from PyPI wheels: ament_index needs the venv prefix (the wheels do not set it).
  case ":${AMENT_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *)
    export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}";; esac
  export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
fi
if [ -f "$_wint3r_root/install/local_setup.bash" ]; then
  # shellcheck disable=SC1091
  COLCON_CURRENT_PREFIX="$_wint3r_root/install" . "$_wint3r_root/install/local_setup.bash"
fi
# Keep DDS discovery on this machine (tests, demo, CI).
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
unset _wint3r_root
