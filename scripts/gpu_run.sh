#!/usr/bin/env bash
# The GPU kit's script (`cargo xtask gpu-kit` copies it to DIR/run.sh). On a machine with an NVIDIA
# GPU, from anywhere: bash DIR/run.sh [OUT]   (OUT default: DIR/gpu-results)
#
# In order of priority, each step under its own time limit so that one slow or hung step cannot
# take the others with it:
#   1. parity on CUDA (check-reference at the GPU tolerance, 1e-3);
#   2. bench text on CUDA against PyTorch on the same GPU, interleaved (one-run ratio), at each
#      precision of PRECISIONS (f32, and bf16: ours `--precision bf16`, PyTorch's bf16 autocast);
#   3. bench vision (tiny, vit-s) on CUDA against PyTorch on the same GPU, at each precision;
#   4. the same parity and benchmarks on wgpu (Vulkan), ours only;
#   5. if DIR/data/text exists, a short real training run (train-text, preset small) on CUDA.
# Writes OUT/results.jsonl (one JSON object per step) and OUT/*.log / OUT/*.json. Needs no network.
# Settings (environment): PYTHON (python3, with a CUDA build of torch), REPEATS (3, text),
# VISION_REPEATS (1), STEP_LIMIT (seconds per step, 300), SECONDS_LEFT (the whole script's
# budget: each step is cut to what is left of it, and skipped under 15 s; default 3600),
# BACKENDS ("cuda cuda-fusion wgpu": the binaries seqpe-<name>, cuda-fusion being the CUDA build
# with Burn's kernel fusion and autotune, whose autotune cache stays in the kit via its cubecl.toml;
# "flex" for a dry run of the kit on a CPU machine, `cargo xtask gpu-kit
# DIR --cpu`: the CUDA steps run there against PyTorch on the CPU), PRECISIONS ("f32 bf16").
set -uo pipefail
kit=$(cd "$(dirname "$0")" && pwd)
out=${1:-$kit/gpu-results}
mkdir -p "$out"
res=$out/results.jsonl
: >"$res"
python=${PYTHON:-python3}
repeats=${REPEATS:-3}
limit=${STEP_LIMIT:-300}
vision_repeats=${VISION_REPEATS:-1}
deadline=$(($(date +%s) + ${SECONDS_LEFT:-3600}))
backends=${BACKENDS:-cuda cuda-fusion wgpu}
precisions=${PRECISIONS:-f32 bf16}

# record STEP BACKEND EXIT SECONDS FILE: one line of results.jsonl
record() {
	printf '{"step": "%s", "backend": "%s", "exit": %d, "seconds": %d, "output": "%s"}\n' \
		"$1" "$2" "$3" "$4" "$5" >>"$res"
	echo "== $1 on $2: exit $3 after $4 s ($5)"
}

# run STEP BACKEND FILE COMMAND...: runs COMMAND under the step limit (or what is left of the
# script's budget), output to OUT/FILE
run() {
	local step=$1 backend=$2 file=$3 t0 rc left
	shift 3
	t0=$(date +%s)
	left=$((deadline - t0))
	if [ "$left" -lt 15 ]; then
		record "$step" "$backend" 124 0 "skipped: out of time"
		return
	fi
	timeout "$((left < limit ? left : limit))" "$@" >"$out/$file" 2>&1
	rc=$?
	record "$step" "$backend" "$rc" $(($(date +%s) - t0)) "$file"
}

gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
torch=$("$python" -c 'import torch; print(torch.__version__, torch.cuda.is_available())' 2>&1 | tail -1)
printf '{"kit": "seqpe gpu-kit", "date": "%s", "gpu": "%s", "cpu": "%s", "torch": "%s"}\n' \
	"$(date -u +%FT%TZ)" "$gpu" "$cpu" "$torch" >>"$res"
echo "GPU: $gpu; CPU: $cpu; torch: $torch"

cd "$kit"
for name in $backends; do
	exe=$kit/seqpe-$name
	b=${name%%-*} # the --backend of the binary (cuda-fusion → cuda)
	if [ ! -x "$exe" ]; then
		record "binary" "$name" 127 0 "seqpe-$name missing"
		continue
	fi
	run check-reference "$name" "check-$name.log" \
		"$exe" --backend "$b" check-reference --gpu-tolerance fixtures/*.safetensors
	if [ "$b" = cuda ] || [ "$b" = flex ]; then
		for p in $precisions; do
			run "bench text vs pytorch ($p)" "$name" "bench-text-$name-$p.log" \
				"$exe" --backend "$b" bench text --preset bench --pes ape,seqpe --steps 20 --warmup 3 \
				--precision "$p" --against-pytorch --python "$python" --repeats "$repeats" \
				--json "$out/bench-text-$name-$p.json"
		done
		for p in $precisions; do
			run "bench vision vs pytorch ($p)" "$name" "bench-vision-$name-$p.log" \
				"$exe" --backend "$b" bench vision --presets tiny,vit-s --pes ape,seqpe,rope2d --steps 10 \
				--precision "$p" --against-pytorch --python "$python" --repeats "$vision_repeats" \
				--json "$out/bench-vision-$name-$p.json"
		done
	else
		run "bench text" "$name" "bench-text-$name.log" \
			"$exe" --backend "$b" bench text --preset bench --pes ape,seqpe --steps 20 --warmup 3 \
			--json "$out/bench-text-$name.json"
		run "bench vision" "$name" "bench-vision-$name.log" \
			"$exe" --backend "$b" bench vision --presets tiny,vit-s --pes ape,seqpe,rope2d --steps 10 \
			--json "$out/bench-vision-$name.json"
	fi
done

if [ -d "$kit/data/text" ] && [ -x "$kit/seqpe-cuda" ]; then
	run "train-text small (time-limited)" cuda train-text-cuda.log \
		"$kit/seqpe-cuda" --backend cuda train-text --preset small --pe seqpe \
		--data-dir "$kit/data" --run "${TMPDIR:-/tmp}/seqpe-gpu-kit-text-small"
fi
echo "results in $res"
