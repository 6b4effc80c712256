# Sourced by lock.sh, wheelhouse.sh and install.sh: the lock file, its target platform, and uv.
# requirements.lock pins (with hashes) the whole dependency tree of the project with every extra, plus
# the build backend, for the platform the sites run: CPython 3.11 on Linux x86_64 (glibc >= 2.28).

LOCK_FILE=requirements.lock
LOCK_PYTHON=3.11
LOCK_PLATFORM=x86_64-manylinux_2_28                # uv's name of the target platform
# pip's names of the same platform (pip download --platform); pure-Python wheels always match
PIP_PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux2010_x86_64
               manylinux1_x86_64)
UV_VERSION=0.13.9

# The lock's pins without their hashes, for `pip install -c` (hashes in a constraints file switch pip to
# hash-checking mode, which an editable install of the project cannot satisfy).
lock_constraints() {
    grep -oE '^[A-Za-z0-9][A-Za-z0-9._-]*==[^ \\;]+' "$LOCK_FILE"
}

# uv (a tool for lock.sh and wheelhouse.sh only, never a dependency of the project): the one on PATH
# when it is this version, else installed from the package index in a virtualenv of its own.
uv() {
    if type -P uv >/dev/null && [ "$(command uv --version | cut -d' ' -f2)" = "$UV_VERSION" ]; then
        command uv "$@"
        return
    fi
    local tools="${XDG_CACHE_HOME:-$HOME/.cache}/ft-auto-upgrade/uv-$UV_VERSION"
    if [ ! -x "$tools/bin/uv" ]; then
        python3 -m venv "$tools"
        "$tools/bin/python" -m pip install -q "uv==$UV_VERSION"
    fi
    "$tools/bin/uv" "$@"
}

# The project's build backend (pyproject's build-system.requires), one requirement per line.
build_requirements() {
    python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))'
}
