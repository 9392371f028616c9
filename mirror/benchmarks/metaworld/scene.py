"""Meta-World (MuJoCo) scenes for keyframe policies: a task reset to the seeded initial state, and offscreen
camera observations (RGB, depth, matrices) from which the world points are computed.

Rendering is offscreen; `MUJOCO_GL` defaults to `egl` (set before MuJoCo is imported), shadows, reflections
and the skybox are off. A scene's initial state is a function of its seed alone: the task's random reset
(object and goal positions) is drawn from a generator seeded per episode.
"""

from __future__ import annotations

import difflib
import os

import gymnasium as gym
import numpy as np

from mirror.errors import ConfigError, MirrorError, missing_extra


def gl_error(err: Exception) -> MirrorError:
    backend = os.environ.get("MUJOCO_GL", "")
    return MirrorError(
        f"MuJoCo cannot create an OpenGL context (MUJOCO_GL={backend}: {type(err).__name__}: {err}); install "
        "EGL and Mesa (Debian: apt-get install libegl1 libgl1 libgl1-mesa-dri) and use MUJOCO_GL=egl, the default")


os.environ.setdefault("MUJOCO_GL", "egl")
try:  # MuJoCo loads its GL backend when imported
    import metaworld  # noqa: F401  (registers the Meta-World/* environments)
    import mujoco
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS, MT10_V3
    from metaworld.policies import ENV_POLICY_MAP  # noqa: F401  (for control, after MUJOCO_GL is set)
except ModuleNotFoundError as err:  # metaworld, mujoco or a package of theirs
    raise missing_extra(err.name or "metaworld", "metaworld", "Meta-World") from None
except (ImportError, AttributeError, RuntimeError, OSError) as err:
    raise gl_error(err) from None

MT10 = tuple(MT10_V3)
CAMERAS = ("corner", "corner2", "topview", "gripperPOV")  # see the README: the workspace from 4 sides
FRONT = "corner2"  # the camera of the understanding model's clips
IMAGE_SIZE = 128


def check_tasks(tasks: list[str], key: str = "--tasks") -> None:
    """One-line error naming an unknown Meta-World task (and the nearest known one)."""
    for task in tasks:
        if task not in ALL_V3_ENVIRONMENTS:
            close = difflib.get_close_matches(task, ALL_V3_ENVIRONMENTS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{key}: unknown Meta-World task '{task}'{hint}; MT10: {', '.join(MT10)}")


def upside_down(data: mujoco.MjData, camera_id: int) -> bool:
    """Whether a camera's image shows the world upside down: its up axis points below the horizon (Meta-World
    mounts `corner` and `corner2` so). Such images are turned 180 degrees, and the camera frame with them."""
    return bool(data.cam_xmat[camera_id].reshape(3, 3)[2, 1] < 0)


def camera_matrices(model: mujoco.MjModel, data: mujoco.MjData, camera: str, size: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Camera-to-world extrinsics (4 x 4) and pinhole intrinsics (3 x 3) of a rendered camera, in the convention
    of `depth_to_world`: camera frame x right, y down, z forward; pixel (u, v) = (column, row) at its centre.

    MuJoCo's camera frame looks along -z with y up, so its rotation is turned by diag(1, -1, -1); an upside-down
    camera's frame turns half a turn about its axis, as its image does.
    """
    cam = model.camera(camera)
    turn = np.diag([-1.0, 1.0, -1.0]) if upside_down(data, cam.id) else np.diag([1.0, -1.0, -1.0])
    pose = np.eye(4)
    pose[:3, :3] = data.cam_xmat[cam.id].reshape(3, 3) @ turn
    pose[:3, 3] = data.cam_xpos[cam.id]
    focal = size / 2 / np.tan(np.radians(model.cam_fovy[cam.id]) / 2)
    centre = (size - 1) / 2
    return pose, np.array([[focal, 0.0, centre], [0.0, focal, centre], [0.0, 0.0, 1.0]])


class Cameras:
    """Offscreen renders of named cameras, upright: RGB, depth in metres (along the camera axis), MuJoCo's
    segmentation (tests) and their matrices."""

    def __init__(self, model: mujoco.MjModel, names: tuple[str, ...] = CAMERAS, size: int = IMAGE_SIZE):
        self.model, self.names, self.size = model, names, size
        try:
            self.renderer = mujoco.Renderer(model, size, size)
        except Exception as err:  # EGL / GLX / OSMesa failures come as several exception types
            raise gl_error(err) from None
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                     mujoco.mjtRndFlag.mjRND_SKYBOX):
            self.renderer.scene.flags[flag] = 0

    def _render(self, data: mujoco.MjData, camera: str, mode: str = "") -> np.ndarray:
        """One upright image of `camera`: RGB, or with `mode` the renderer's `depth` or `segmentation`."""
        if mode:
            getattr(self.renderer, f"enable_{mode}_rendering")()
        try:
            self.renderer.update_scene(data, camera=camera)
            image = self.renderer.render()
        finally:
            if mode:
                getattr(self.renderer, f"disable_{mode}_rendering")()
        if upside_down(data, self.model.camera(camera).id):
            image = image[::-1, ::-1]
        return image.copy()

    def rgb(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        return self._render(data, camera)

    def depth(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        return self._render(data, camera, "depth")

    def segmentation(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """(H, W, 2): object id and type (`mjtObj`) per pixel, -1 where none."""
        return self._render(data, camera, "segmentation")

    def observe(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """Every camera: RGB (C, H, W, 3) uint8, depth (C, H, W) float32 metres, extrinsics, intrinsics."""
        matrices = [camera_matrices(self.model, data, c, self.size) for c in self.names]
        return {
            "rgb": np.stack([self.rgb(data, c) for c in self.names]),
            "depth": np.stack([self.depth(data, c) for c in self.names]),
            "extrinsics": np.stack([m[0] for m in matrices]),
            "intrinsics": np.stack([m[1] for m in matrices]),
        }

    def close(self) -> None:
        self.renderer.close()

class Scene:
    """One Meta-World task (gymnasium's `Meta-World/goal_observable`), reset to seeded initial states."""

    def __init__(self, task: str, cameras: tuple[str, ...] = CAMERAS, size: int = IMAGE_SIZE):
        check_tasks([task], "task")
        self.task = task
        self.env = gym.make("Meta-World/goal_observable", env_name=task, seed=0, disable_env_checker=True)
        self.base = self.env.unwrapped
        self.cameras = Cameras(self.base.model, cameras, size)
        self.other_cameras: dict[tuple[tuple[str, ...], int], Cameras] = {}
        self.obs: np.ndarray | None = None
        self.success = False
        self.steps = 0
        self.gripper_open = True

    @property
    def model(self) -> mujoco.MjModel:
        return self.base.model

    @property
    def data(self) -> mujoco.MjData:
        return self.base.data

    def reset(self, seed: int) -> np.ndarray:
        """The initial state of `seed`: the task's random reset is drawn from a generator seeded with it."""
        self.base._freeze_rand_vec = False  # draw a new reset vector, from `np_random`
        self.base.seeded_rand_vec = True
        self.base.seed(seed)
        self.env.reset()
        # Meta-World places objects and goal after its last forward pass: positions (and the first render)
        # would still show the previous draw; recompute them and the observation.
        mujoco.mj_forward(self.model, self.data)
        self.base._prev_obs = self.base._get_curr_obs_combined_no_goal()
        self.obs = self.base._get_obs()
        self.success, self.steps, self.gripper_open = False, 0, True
        return self.obs

    def place(self) -> dict[str, np.ndarray]:
        """Where this episode's reset put the object (the placed body) and the goal, which its variation
        is read from."""
        return {"object": np.array(self.base._last_rand_vec[:3]), "goal": np.array(self.base._target_pos)}

    def placement(self, seed: int) -> np.ndarray:
        """The object's and the goal's positions (6 numbers) in the scene of `seed`."""
        self.reset(seed)
        return np.concatenate(list(self.place().values()))

    @property
    def budget(self) -> int:
        """Env steps left before the task's horizon (500)."""
        return self.base.max_path_length - self.steps

    def step(self, action: np.ndarray) -> np.ndarray:
        self.obs, _, _, _, info = self.env.step(np.asarray(action, dtype=np.float32))
        self.steps += 1
        self.success = self.success or bool(info["success"])
        return self.obs

    def hand(self) -> np.ndarray:
        return np.array(self.obs[:3])

    def reach(self) -> tuple[np.ndarray, np.ndarray]:
        """The box the tool-centre point can be driven to: the mocap's box moved by the TCP's offset from the
        mocap (the hand follows the mocap through a weld; the TCP sits between the fingertips)."""
        offset = self.hand() - self.data.mocap_pos[0]
        return self.base.mocap_low + offset, self.base.mocap_high + offset

    def fingers(self) -> np.ndarray:
        """Positions of the two finger joints (r_close, l_close)."""
        return np.array([self.data.joint("r_close").qpos[0], self.data.joint("l_close").qpos[0]])

    def proprio(self) -> np.ndarray:
        """Gripper open (the last command), the two finger joint positions; RLBench's layout."""
        return np.array([float(self.gripper_open), *self.fingers()], dtype=np.float32)

    def pose(self) -> list[float]:
        """The hand's position and, as its orientation, the identity quaternion (xyzw). Meta-World holds the hand
        at a quarter turn about y: ARP's xyz Euler bins are singular there, and the hand's contact wobble of a
        degree would scatter roll and yaw over the whole circle, a target no policy can learn and none needs."""
        return [*(float(v) for v in self.hand()), 0.0, 0.0, 0.0, 1.0]

    def inputs(self) -> dict[str, np.ndarray]:
        """The execution model's inputs: RGB, world points and proprioception (as from the cache)."""
        from mirror.data.keyframes.points import world_points

        obs = self.cameras.observe(self.data)
        return {"rgb": obs["rgb"], "xyz": world_points(obs), "proprio": self.proprio()}

    def cameras_for(self, names: tuple[str, ...], size: int) -> Cameras:
        """Renders of other cameras or sizes than the observation's (a video's), made once and closed with the
        scene: a renderer that outlived its scene would hold its model and GL buffers (~150 MB at 320 px) for good."""
        key = (names, size)
        if key not in self.other_cameras:
            self.other_cameras[key] = Cameras(self.model, names, size)
        return self.other_cameras[key]

    def physics(self) -> np.ndarray:
        """The full physics state, to render a recorded frame later."""
        spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        state = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, state, spec)
        return state

    def restore(self, state: np.ndarray) -> None:
        mujoco.mj_setState(self.model, self.data, state, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        mujoco.mj_forward(self.model, self.data)

    def close(self) -> None:
        for cameras in (self.cameras, *self.other_cameras.values()):
            cameras.close()
        self.other_cameras.clear()
        self.env.close()


class OpenScenes:
    """The scenes a process plays, the `keep` most recently used left open: each holds about 200 MB (MuJoCo and
    its renderer) and takes about a second to build, and work comes task by task (a worker that kept all 16
    tasks' scenes held 5 GB)."""

    def __init__(self, cameras: tuple[str, ...] = CAMERAS, size: int = IMAGE_SIZE, keep: int = 2):
        self.cameras, self.size, self.keep = cameras, size, keep
        self.open: dict[str, Scene] = {}  # least recently used first

    def get(self, task: str) -> Scene:
        scene = self.open.pop(task) if task in self.open else Scene(task, self.cameras, self.size)
        self.open[task] = scene
        while len(self.open) > self.keep:
            self.open.pop(next(iter(self.open))).close()
        return scene

    def close(self) -> None:
        for scene in self.open.values():
            scene.close()
        self.open.clear()
