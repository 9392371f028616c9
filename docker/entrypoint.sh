#!/usr/bin/env bash
# Start a virtual display for CoppeliaSim (QT_QPA_PLATFORM=offscreen renders black frames), wait until it
# accepts clients, then run the command.
set -euo pipefail
display=${DISPLAY:-:99}
Xvfb "$display" -screen 0 1280x1024x24 +extension GLX +render -noreset >/tmp/xvfb.log 2>&1 &
xvfb=$!
number=${display#:}
socket=/tmp/.X11-unix/X${number%%.*}
for _ in $(seq 100); do
  [ -S "$socket" ] && exec "$@"
  kill -0 "$xvfb" 2>/dev/null || { echo "entrypoint: Xvfb exited:" >&2; cat /tmp/xvfb.log >&2; exit 1; }
  sleep 0.1
done
echo "entrypoint: Xvfb did not open $socket within 10 s:" >&2
cat /tmp/xvfb.log >&2
exit 1
