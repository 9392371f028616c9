"""Scripted tasks: open_drawer, push_buttons and close_jar reach a goal; turn_tap's planner finds no path;
crash_task aborts the process, hang_task never returns."""
