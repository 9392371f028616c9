from enum import Enum


class RenderMode(Enum):
    OPENGL = 0
    OPENGL3 = 6
