#!/usr/bin/env bash
# Regenerates v2.db and v1.7.db with containerd's own metadata packages
# (module proxy; the generator is its own module so that ctrlift does not
# depend on containerd).
set -euo pipefail
cd "$(dirname "$0")"
(cd gen && go mod tidy && go run . ../v2.db ../v1.7.db)
