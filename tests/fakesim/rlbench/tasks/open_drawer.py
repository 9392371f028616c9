from rlbench.environment import FakeTask


class OpenDrawer(FakeTask):
    name = "open_drawer"
