# wint3r_ros on ROS 2 Jazzy (Ubuntu 24.04): rosdep + colcon, the way a ROS workspace builds it.
#
#   docker build -t wint3r_ros:jazzy .
#   docker run --rm -it --net=host wint3r_ros:jazzy ros2 launch wint3r_ros rig.launch.py
#   docker run --rm -it --net=host --gpus all wint3r_ros:jazzy \
#       ros2 launch wint3r_ros rig.launch.py device:=cuda       # needs the NVIDIA Container Toolkit
#
# rosdep installs every dependency that has a rosdep key (apt). The rest goes into a venv that
# sees the system packages (Ubuntu 24.04 refuses `pip install` into the system Python, PEP 668):
# torch (TORCH_SPEC: PyPI's Linux x86_64 wheels carry CUDA; Ubuntu's python3-torch is CPU-only,
# so its key is skipped), safetensors (no rosdep key) and rosbags (its -pip key would run pip on
# the system Python). Test dependencies are left out. The README has the same recipe without Docker.
FROM ros:jazzy

ARG TORCH_SPEC=torch==2.13.0
ARG PIP_ONLY="safetensors rosbags"
ARG SKIP_KEYS="python3-torch python3-rosbags-pip"
ENV DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

WORKDIR /ws
# package.xml first: the dependency layers stay cached while the code changes.
COPY package.xml src/wint3r_ros/package.xml
RUN apt-get update \
 && rosdep update --rosdistro "$ROS_DISTRO" \
 && rosdep install --from-paths src --ignore-src -y --rosdistro "$ROS_DISTRO" \
        --dependency-types buildtool --dependency-types build --dependency-types build_export \
        --dependency-types exec --skip-keys "$SKIP_KEYS" \
 && apt-get install -y --no-install-recommends python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv --system-site-packages /opt/wint3r_venv \
 && /opt/wint3r_venv/bin/pip install --no-cache-dir "$TORCH_SPEC" $PIP_ONLY
ENV VIRTUAL_ENV=/opt/wint3r_venv PATH=/opt/wint3r_venv/bin:$PATH

COPY . src/wint3r_ros
RUN source "/opt/ros/$ROS_DISTRO/setup.bash" \
 && colcon build --packages-select wint3r_ros --event-handlers console_direct- \
        --cmake-args -DPython3_EXECUTABLE=/opt/wint3r_venv/bin/python -DBUILD_TESTING=OFF \
 && sed -i '/^exec /i source /ws/install/setup.bash' /ros_entrypoint.sh

CMD ["ros2", "launch", "wint3r_ros", "rig.launch.py"]
