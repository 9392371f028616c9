class InvalidActionError(Exception):
    pass


class TaskEnvironmentError(Exception):
    pass


class BoundaryError(Exception):
    pass


class WaypointError(Exception):
    pass
