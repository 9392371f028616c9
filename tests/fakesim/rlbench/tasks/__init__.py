"""Fake tasks: open_drawer and push_buttons reach a goal; close_jar fails IK, turn_tap path planning;
crash_task aborts the process, hang_task never returns."""
