from rlbench.environment import FakeTask


class PushButtons(FakeTask):
    name = "push_buttons"
