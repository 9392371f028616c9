#!/usr/bin/env bash
# Start a virtual display for CoppeliaSim (QT_QPA_PLATFORM=offscreen renders black frames), then run the command.
set -euo pipefail
Xvfb "${DISPLAY:-:99}" -screen 0 1280x1024x24 +extension GLX +render -noreset >/tmp/xvfb.log 2>&1 &
sleep 2
exec "$@"
