"""Meta-World (MuJoCo) tasks for keyframe policies: seeded scenes, camera observations with world-point
geometry, the scripted expert, and the keyframe controller that executes a 9-D key-pose action.

Rendering is offscreen; `MUJOCO_GL` defaults to `egl` (set before MuJoCo is imported), shadows, reflections
and the skybox are off. A scene's initial state is a function of its seed alone: the task's random reset
(object and goal positions) is drawn from a generator seeded per episode.

The controller: the mocap target (which the hand follows through a weld) moves in a straight line at the
arm's top speed (1 cm per env step) to the action's xyz, the hand settles, then the gripper acts (open or
close) while the hand holds. The Sawyer's orientation is fixed in Meta-World, so the action's rotation is
ignored. Success is the environment's own `success` flag, at any step.
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from mirror.data.metaworld.tasks import task_text, twin_texts
from mirror.data.seeds import episode_seed
from mirror.envs.episode import EpisodeResult
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
    from metaworld.policies import ENV_POLICY_MAP
except ModuleNotFoundError as err:  # metaworld, mujoco or a package of theirs
    raise missing_extra(err.name or "metaworld", "metaworld", "Meta-World") from None
except (ImportError, AttributeError, RuntimeError, OSError) as err:
    raise gl_error(err) from None

MT10 = tuple(MT10_V3)
CAMERAS = ("corner", "corner2", "topview", "gripperPOV")  # see the README: the workspace from 4 sides
FRONT = "corner2"  # the camera of the understanding model's clips
IMAGE_SIZE = 128
MAX_KEYFRAMES = 15  # key poses per rollout episode
MOVE_STEPS = 100  # env steps one move may take
GAIN = 10.0  # proportional gain on the hand's position error (an action of 1 moves the mocap 1 cm)
SETTLED = 0.003  # metres between hand and target that count as arrived
STALL_STEPS, STALLED = 10, 0.001  # a hand that moved less than 1 mm in 10 steps is blocked: the move ends
GRIP_STEPS = 10  # env steps the gripper acts while the hand holds
CLOSED, OPEN = 1.0, -1.0  # gripper efforts
AFTER_SUCCESS = 25  # expert steps recorded after its first success
ATTEMPTS = 64  # candidate seeds per episode: for its variation and, in demonstrations, a succeeding expert
EPISODES, REPEATS = 1000, 15  # episode indices and evaluation repeats that fit a split's seed range
VIDEO_EVERY = 4  # env steps between the frames of a rollout video (Meta-World runs 80 env steps a second)


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
        self.cameras.close()
        self.env.close()


def move_to(scene: Scene, target: np.ndarray, gripper_open: bool, watch: Callable[[], None] | None = None) -> None:
    """Keyframe controller: the hand moves to `target` (clipped to the TCP's reach) under proportional
    control along the straight line, at most `MOVE_STEPS` env steps, until it is within `SETTLED` or stalls;
    then the gripper acts for `GRIP_STEPS` while the hand holds. Stops early on success or at the horizon.
    `watch` is called after every env step (to record a video)."""
    low, high = scene.reach()
    target = np.clip(np.asarray(target[:3], dtype=np.float64), low, high)

    def hold(effort: float) -> None:
        delta = GAIN * (target - scene.hand())
        scene.step([*(delta / max(1.0, np.abs(delta).max())), effort])
        if watch is not None:
            watch()

    effort = OPEN if scene.gripper_open else CLOSED
    trail = [scene.hand()]
    for _ in range(MOVE_STEPS):
        if np.linalg.norm(scene.hand() - target) < SETTLED or scene.success or scene.budget <= 0:
            break
        if len(trail) > STALL_STEPS and np.linalg.norm(trail[-1] - trail[-1 - STALL_STEPS]) < STALLED:
            break
        hold(effort)
        trail.append(scene.hand())
    if gripper_open != scene.gripper_open:
        scene.gripper_open = gripper_open
        effort = OPEN if gripper_open else CLOSED
        for _ in range(GRIP_STEPS):
            if scene.success or scene.budget <= 0:
                break
            hold(effort)


@dataclass
class Trajectory:
    """The scripted expert's episode: T actions, T + 1 frames (hand pose, fingers and physics state per frame)."""

    pose: np.ndarray  # (T + 1, 7) hand xyz + quaternion xyzw
    fingers: np.ndarray  # (T + 1, 2) finger joint positions
    grip: np.ndarray  # (T,) gripper effort of each action
    physics: list[np.ndarray]  # T + 1 states
    success: bool

    @property
    def hand(self) -> np.ndarray:
        return self.pose[:, :3]


def expert(scene: Scene, seed: int) -> Trajectory:
    """Run Meta-World's scripted policy for the task from the seed's initial state until `AFTER_SUCCESS` steps
    after its first success (the first success often comes with the hand still on its way, at the edge of
    the success region; the episode's last frame is then well inside it)."""
    policy = ENV_POLICY_MAP[scene.task]()
    obs = scene.reset(seed)
    pose, fingers, grip, physics = [scene.pose()], [scene.fingers()], [], [scene.physics()]
    after = 0
    while after < AFTER_SUCCESS and scene.budget > 0:
        after += scene.success
        with warnings.catch_warnings():  # the experts' gains exceed the action range by design
            warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")
            action = policy.get_action(obs)
        obs = scene.step(action)
        pose.append(scene.pose())
        fingers.append(scene.fingers())
        grip.append(float(action[3]))
        physics.append(scene.physics())
    return Trajectory(np.asarray(pose), np.stack(fingers), np.asarray(grip), physics, scene.success)


def replay(scene: Scene, seed: int, targets: list[tuple[np.ndarray, bool]]) -> bool:
    """Whether the keyframe controller, given only the (position, gripper open) key poses, solves the task
    from the seed's initial state."""
    scene.reset(seed)
    for position, gripper_open in targets:
        if scene.success or scene.budget <= 0:
            break
        move_to(scene, position, gripper_open)
    return scene.success


def candidate_seeds(base_seed: int, split: str, index: int, repeat: int = 0) -> list[int]:
    """The seeds episode `index` of a split may start from in evaluation repeat `repeat`, in order: disjoint
    for every (split, index, repeat), inside the split's seed range."""
    if not (0 <= index < EPISODES and 0 <= repeat < REPEATS):
        raise ConfigError(f"Meta-World scenes: episode index must be below {EPISODES} and repeat below {REPEATS}, "
                          f"got {index} and {repeat}")
    first = (repeat * EPISODES + index) * ATTEMPTS
    return [episode_seed(base_seed, split, first + a) for a in range(ATTEMPTS)]


def scene_seed(scene: Scene, base_seed: int, split: str, index: int, repeat: int = 0,
               accept: Callable[[int], bool] = lambda seed: True) -> tuple[int, int]:
    """Episode `index`'s seed: the first candidate whose scene is the episode's variation (index modulo the
    task's count, so variations take turns) and which `accept`s (e.g. the expert succeeds from it).
    Returns the seed and the number of candidates `accept` refused."""
    text = task_text(scene.task)
    refused = 0
    for seed in candidate_seeds(base_seed, split, index, repeat):
        scene.reset(seed)
        if text.variation(scene.place()) != index % text.count:
            continue
        if accept(seed):
            return seed, refused
        refused += 1
    raise MirrorError(f"{scene.task}: no scene of variation {index % text.count} among {ATTEMPTS} seeds for "
                      f"episode {index} ({refused} refused)")


Policy = Callable[[dict, str], np.ndarray]  # (observation inputs, instruction) -> 9-D action


class MetaWorldEnv:
    """Rollouts of a keyframe policy: episode i of a task in repeat r starts from `scene_seed` in the seed range
    of `split` (rollout: validation during training; test: `mirror eval`), with the instruction of its
    variation (or, with `twin`, the twin task's instruction for the same scene); the policy acts for at most
    `max_keyframes` key poses (or until the task's 500-step horizon)."""

    def __init__(self, base_seed: int, split: str = "rollout", cameras: tuple[str, ...] = CAMERAS,
                 size: int = IMAGE_SIZE, max_keyframes: int = MAX_KEYFRAMES):
        self.base_seed, self.split = base_seed, split
        self.camera_names, self.size, self.max_keyframes = cameras, size, max_keyframes
        self.scenes: dict[str, Scene] = {}
        self.frames: list[np.ndarray] = []  # the last episode's video, when it was asked for one

    def scene(self, task: str) -> Scene:
        if task not in self.scenes:
            self.scenes[task] = Scene(task, self.camera_names, self.size)
        return self.scenes[task]

    def run_episode(self, task: str, index: int, policy: Policy, repeat: int = 0, twin: bool = False,
                    video: bool = False) -> EpisodeResult:
        """One episode; with `video`, `frames` holds the front camera every `VIDEO_EVERY` env steps."""
        scene = self.scene(task)
        seed, _ = scene_seed(scene, self.base_seed, self.split, index, repeat)
        scene.reset(seed)
        v = task_text(task).variation(scene.place())
        instruction = (twin_texts(task, v) if twin else task_text(task).texts(v))[0]
        self.frames = []

        def film() -> None:
            if scene.steps % VIDEO_EVERY == 0:
                self.frames.append(scene.cameras.rgb(scene.data, FRONT))

        if video:
            film()
        keyframes = 0
        while keyframes < self.max_keyframes and not scene.success and scene.budget > 0:
            action = policy(scene.inputs(), instruction)
            move_to(scene, action[:3], bool(action[7] >= 0.5), film if video else None)
            keyframes += 1
        return EpisodeResult(task, index, scene.success, float(scene.success), keyframes, seed=seed)

    def close(self) -> None:
        for scene in self.scenes.values():
            scene.close()
        self.scenes = {}
