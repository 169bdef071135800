# shellcheck shell=bash
# tools/lib.sh - shared by tools/test, tools/run and tools/demo-inspect.
# Source it; it defines functions and RS_ROOT, and changes nothing else.

RS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian 12 packages the build, the tests and the tools need.
RS_PACKAGES=(
    build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
    liburing-dev libhiredis-dev libmimalloc-dev libcriterion-dev liblzf-dev libisal-dev libjson-c-dev
    libmicrohttpd-dev libyaml-dev redis-server redis-tools nutcracker gnuplot-nox valgrind python3
    python3-prometheus-client
)

# Prints the comment block at the top of the calling script, as its --help.
rs_usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

rs_log() {
    printf 'tools/%s: %s\n' "$(basename "$0")" "$*" >&2
}

# Prints the packages of RS_PACKAGES that dpkg does not list as installed.
rs_missing_packages() {
    local p
    for p in "${RS_PACKAGES[@]}"; do
        if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then
            printf '%s\n' "$p"
        fi
    done
}

# Installs whatever of RS_PACKAGES is missing (apt-get, as root or via sudo).
rs_install_missing() {
    if ! command -v dpkg-query >/dev/null; then
        rs_log "not a Debian system; make sure these are installed: ${RS_PACKAGES[*]}"
        return 0
    fi
    local missing
    mapfile -t missing < <(rs_missing_packages)
    ((${#missing[@]} > 0)) || return 0

    local -a as_root=()
    if ((EUID != 0)); then
        if command -v sudo >/dev/null; then
            as_root=(sudo)
        else
            rs_log "missing packages, and not root and no sudo: ${missing[*]}"
            return 1
        fi
    fi
    rs_log "installing: ${missing[*]}"
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# Prints a TCP port that is free on 127.0.0.1 right now.
rs_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The build flavours: build/<flavour> is configured with RS_FLAVOUR_<flavour>.
RS_FLAVOURS=(release asan)
# (read by rs_build through ${!opts}, which shellcheck cannot follow)
# shellcheck disable=SC2034
RS_FLAVOUR_release=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DRS_WERROR=ON -DRS_SANITIZE=)
# shellcheck disable=SC2034
RS_FLAVOUR_asan=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g" -DRS_WERROR=ON
    "-DRS_SANITIZE=address,undefined")

# rs_check_flavours <flavour>...: fails, naming it, on an unknown flavour.
rs_check_flavours() {
    local f
    for f in "$@"; do
        if ! declare -p "RS_FLAVOUR_$f" >/dev/null 2>&1; then
            rs_log "unknown build flavour: $f (known: ${RS_FLAVOURS[*]})"
            return 1
        fi
    done
}

# rs_build <flavour> [cmake --build options, e.g. --target ringsync]:
# configures and builds build/<flavour> (-j2), going on past a failing target
# so that everything else still gets built (and tested). The output goes to
# build/<flavour>/build.log and is shown only on failure.
rs_build() {
    local flavour=$1 dir=$RS_ROOT/build/$1
    shift
    local opts="RS_FLAVOUR_${flavour}[@]"
    local keep_going=(-- -k)
    [[ ${CMAKE_GENERATOR:-} == Ninja* ]] && keep_going=(-- -k 0)
    mkdir -p "$dir"
    if ! { cmake -S "$RS_ROOT" -B "$dir" "${!opts}" &&
        cmake --build "$dir" -j2 "$@" "${keep_going[@]}"; } \
        >"$dir/build.log" 2>&1; then
        {
            grep -E ': (fatal )?(error|warning): |CMake Error' "$dir/build.log" | head -n 40
            echo "--- last lines of build/$flavour/build.log:"
            tail -n 25 "$dir/build.log"
        } >&2
        rs_log "build of build/$flavour failed (full log: build/$flavour/build.log)"
        return 1
    fi
}
