#!/usr/bin/env bash
# One GPU check (issue #17), within 8 minutes on one GPU, from the repository root:
#
#     bash benchmarks/gpu_check.sh [TABLE.md]             # default gpu_check.md; full outputs in TABLE.log
#     DEVICE=cpu SIZE=tiny bash benchmarks/gpu_check.sh    # the same parts at CPU sizes (a check of the script)
#
# Runs bench_mixers.py, bench_step.py and bench_data.py on the device, and bench_epoch.py (PreActResNet-18
# epoch time on a CIFAR-100-shaped in-memory set: fp32, bf16, bf16 + channels_last, bf16 + channels_last +
# compile, against a hand-written loop doing the same work). Writes one markdown table to stdout and to
# TABLE.md. Each part has a time limit (LIMITS below: 450 s in all on a GPU) and the table says when one
# ran out.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-full}
OUT=${1:-gpu_check.md}
LOG=${OUT%.md}.log
declare -A LIMITS=([mixers]=75 [step]=60 [data]=60 [epoch]=255)

if [ "$SIZE" = tiny ]; then  # a slow CPU: small sizes, and time for torch.compile on a CPU (minutes)
    LIMITS=([mixers]=300 [step]=300 [data]=120 [epoch]=900)
    MIXERS=(--repeats 1 --shapes 32)
    STEP=(--batch 8 --size 16 --reps 1)
    DATA=(--images 2000 --repeats 1)
    EPOCH=(--images 64 --batch 32 --epochs 2 --timeout 880)
else
    MIXERS=()
    STEP=()
    DATA=()
    EPOCH=(--timeout 245)  # under its limit: a variant that does not fit is reported, not cut off
fi

: > "$LOG"
started=$(date +%s)
rows=()
cell() {  # lines -> one table cell (pipes escaped, lines joined by <br>)
    sed -e 's/|/\\|/g' | awk 'NF { printf "%s%s", (n++ ? "<br>" : ""), $0 }'
}

run_part() {  # name, pattern of the lines to show, command ...
    local name=$1 pattern=$2
    shift 2
    local limit=${LIMITS[$name]} t0 rc out
    t0=$(date +%s)
    out=$(timeout "$limit" "$@" 2>&1)
    rc=$?
    printf '### %s (exit %s, %s s)\n$ %s\n%s\n\n' "$name" "$rc" "$(($(date +%s) - t0))" "$*" "$out" >> "$LOG"
    if [ "$rc" = 124 ]; then
        echo "timed out after ${limit} s (partial output in $LOG)"
    elif [ "$rc" != 0 ]; then
        echo "failed (exit $rc): $(printf '%s\n' "$out" | tail -n 1)"
    else
        printf '%s\n' "$out" | grep -E "$pattern"
    fi
}

device_info=$("$PY" -c "import torch; d = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'; \
print(f'torch {torch.__version__}, {d}')" 2>&1 | tail -n 1)
rows+=("| setup | $(printf '%s\n' "DEVICE=$DEVICE SIZE=$SIZE, $device_info, $(date -u +%Y-%m-%dT%H:%MZ)" | cell) |")

mixers=$(run_part mixers "per-sample|targets" "$PY" benchmarks/bench_mixers.py --device "$DEVICE" "${MIXERS[@]}")
rows+=("| bench_mixers.py --device $DEVICE | $(printf '%s\n' "$mixers" | cell) |")

step=$(run_part step "^vanilla |MixupE / Mixup|targets" "$PY" benchmarks/bench_step.py --device "$DEVICE" \
    "${STEP[@]}")
rows+=("| bench_step.py --device $DEVICE | $(printf '%s\n' "$step" | cell) |")

data=$(run_part data "images/s|ratio" "$PY" benchmarks/bench_data.py --device "$DEVICE" "${DATA[@]}")
rows+=("| bench_data.py --device $DEVICE | $(printf '%s\n' "$data" | cell) |")

epoch=$(run_part epoch "^\| (fp32|bf16)" "$PY" benchmarks/bench_epoch.py --device "$DEVICE" "${EPOCH[@]}")
if printf '%s\n' "$epoch" | grep -q '^| '; then  # its rows: variant | msda 1 | msda N | hand 1 | hand N | img/s | ratio
    while IFS='|' read -r _ variant m1 mn h1 hn ips ratio _; do
        rows+=("| epoch ${variant// /} | msda ${m1// /} s first, ${mn// /} s last (${ips// /} img/s); hand-written \
${h1// /} s first, ${hn// /} s last; ratio hand/msda ${ratio# } |")
    done <<< "$epoch"
else
    rows+=("| bench_epoch.py --device $DEVICE | $(printf '%s\n' "$epoch" | cell) |")
fi

{
    echo "| check | result |"
    echo "|---|---|"
    printf '%s\n' "${rows[@]}"
    echo "| total | $(($(date +%s) - started)) s; full outputs in $LOG |"
} | tee "$OUT"
