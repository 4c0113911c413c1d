#!/usr/bin/env bash
# Runs the README's "Quick start" commands exactly as they are written there, in order, from the
# repository root: CI (.ci/run) calls this on a clean clone, so the README and what CI proves
# cannot drift apart. The commands are read from the first ```sh block under "## Quick start"
# (every line that is neither blank nor a comment is one command).
#
# - A command that serves until Ctrl-C (`... demo`, `... serve`) is started in the background;
#   the script waits for the URL it prints, fetches that page and checks it answers 200 with
#   the fleet on it, then sends SIGINT (Ctrl-C) and expects a clean exit (status 0).
# - Every other command must exit 0.
#
# The runs use a fresh data directory ($XDG_DATA_HOME), as a new user has, so nothing of an
# earlier run (a store, a demo database) is reused. QUICKSTART_ONLY=N runs only the Nth command.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t commands < <(awk '
    /^## Quick start/ { in_section = 1; next }
    in_section && /^## / { exit }
    in_section && /^```sh/ { in_block = 1; next }
    in_section && in_block && /^```/ { exit }
    in_block && !/^[[:space:]]*(#|$)/ { sub(/^[[:space:]]+/, ""); print }
' README.md)

if [ "${#commands[@]}" -eq 0 ]; then
    echo "quickstart: no commands found under README.md's \"## Quick start\" sh block" >&2
    exit 2
fi

data_home=$(mktemp -d)
logs=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$data_home" "$logs"
}
trap cleanup EXIT
export XDG_DATA_HOME="$data_home"

# Runs a command that serves until interrupted: waits for its URL, checks the page, stops it.
run_server() {
    local cmd=$1 log=$logs/server.log url= code
    bash -c "exec $cmd" >"$log" 2>&1 &
    server_pid=$!
    # The first run of `cargo run` may still be compiling: allow for a long build.
    for _ in $(seq 1 1800); do
        url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/' "$log" | head -n1 || true)
        [ -n "$url" ] && break
        if ! kill -0 "$server_pid" 2>/dev/null; then
            cat "$log" >&2
            echo "quickstart: '$cmd' exited before serving" >&2
            return 1
        fi
        sleep 1
    done
    if [ -z "$url" ]; then
        cat "$log" >&2
        echo "quickstart: '$cmd' printed no URL within 30 minutes" >&2
        return 1
    fi
    echo "quickstart: '$cmd' serves $url"
    # The demo prints a login for each role: sign in as its admin, as the README says.
    local jar=$logs/cookies.txt login pass csrf
    rm -f "$jar"
    login=$(grep -E '^ +admin / ' "$log" | head -n1 || true)
    if [ -n "$login" ]; then
        pass=$(echo "$login" | sed -E 's#^ +admin / ([^ ]+) .*#\1#')
        curl -s -c "$jar" -b "$jar" -o "$logs/login.html" --max-time 30 "${url}login"
        csrf=$(grep -oE 'name="csrf" value="[^"]+"' "$logs/login.html" | head -n1 |
            sed -E 's/.*value="([^"]+)"/\1/' || true)
        code=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{http_code}' --max-time 30 \
            -H "Origin: ${url%/}" --data-urlencode "name=admin" \
            --data-urlencode "password=$pass" --data-urlencode "csrf=$csrf" \
            --data-urlencode "next=/" "${url}login")
        if [ "$code" != 303 ]; then
            cat "$log" >&2
            echo "quickstart: signing in as the demo's admin answered $code (expected 303)" >&2
            return 1
        fi
        echo "quickstart: signed in as the demo's admin"
    fi
    code=$(curl -s -b "$jar" -o "$logs/page.html" -w '%{http_code}' --max-time 30 "$url")
    if [ "$code" != 200 ] || ! grep -q 'contoso-legal.example' "$logs/page.html"; then
        cat "$log" >&2
        echo "quickstart: GET $url answered $code without the sample fleet" >&2
        return 1
    fi
    echo "quickstart: GET $url: 200, the sample fleet is listed"
    # Ctrl-C, as the README says.
    kill -INT "$server_pid"
    local status=0
    wait "$server_pid" || status=$?
    server_pid=
    cat "$log"
    if [ "$status" -ne 0 ]; then
        echo "quickstart: '$cmd' exited with status $status after Ctrl-C (expected 0)" >&2
        return 1
    fi
}

n=0
for cmd in "${commands[@]}"; do
    n=$((n + 1))
    if [ -n "${QUICKSTART_ONLY:-}" ] && [ "$QUICKSTART_ONLY" != "$n" ]; then
        continue
    fi
    echo "== quickstart $n/${#commands[@]}: $cmd"
    started=$SECONDS
    case "$cmd" in
        *" demo" | *" demo "* | *" serve" | *" serve "*)
            run_server "$cmd"
            ;;
        *)
            # As written: the shell reads the line exactly as a user would paste it.
            bash -c "$cmd"
            ;;
    esac
    # The last command (the test suite) ends the output with its own closing line.
    if [ "$n" -lt "${#commands[@]}" ]; then
        echo "== quickstart $n: done in $((SECONDS - started)) s"
    fi
done
