#!/usr/bin/env bash
# Regenerate the GPU profiles from ML.ENERGY v3 files (run from the repository root).
set -euo pipefail
M=${MLENERGY:-../shared/data/mlenergy/v3/models}
PY=${PYTHON:-python}
COMMON=(--gpu H100 --hardware-name 'NVIDIA H100 80GB HBM3'
  --quality profiles/quality/mlenergy_quality.yaml
  --release 'ML.ENERGY v3 (leaderboard commit 0cd52dab, data commit b37408f3)'
  --idle-w 75 --idle-kind assumed
  --idle-why 'assumed 75 W per allocated, powered-on H100 SXM between batches: neither the ML.ENERGY files nor a source found by search give an H100 idle power; 75 W is about 11 % of its 700 W TDP; results on these profiles also report 0.5x (37.5 W) and 2x (150 W)'
  --node-static-w 1000 --static-kind assumed
  --static-why 'assumed 1000 W host power of a powered 8-GPU HGX/DGX H100 node excluding its GPUs (CPUs, DRAM, NVSwitch, NICs, fans, PSU loss): no measured value was found; results also report 0.5x and 2x'
  --devices-per-node 8 --fleet elastic --fleet-nodes 4
  --load-gb-per-s 2 --load-kind assumed
  --load-why 'assumed 2 GB/s at which a new replica reads its weights (bf16: 2 bytes per parameter of the file total_params_billions) from local NVMe into GPU memory; not measured here or in ML.ENERGY; a cold start = env.cold_start_s + weights_gb / 2 GB/s (Llama-3.1-8B 8 s, gemma-3-27b 27 s); results also report the same comparison with env.model_load_scale=0')
CHAT=("$M/meta-llama__Llama-3.1-8B-Instruct__lm-arena-chat.json"
  "$M/google__gemma-3-12b-it__lm-arena-chat.json"
  "$M/google__gemma-3-27b-it__lm-arena-chat.json"
  "$M/Qwen__Qwen3-30B-A3B-Instruct-2507__lm-arena-chat.json")
$PY -m energy.import_mlenergy "${CHAT[@]}" "${COMMON[@]}" --stage-name chat \
  --replica-gpus google/gemma-3-27b-it=2 --batches 8 16 32 64 --sla-ms 60000 \
  --out profiles/llm_chat_h100.yaml --notes 'One chat stage (ML.ENERGY lm-arena-chat prompts, vLLM, continuous batching) on H100s; the batch knob is the concurrency cap max_num_seqs. gemma-3-27b-it runs on 2 GPUs per replica (tensor parallel; on one H100 ML.ENERGY measured it only up to cap 32). A row is one replica serving cap requests: latency_mean = cap / measured request throughput; latency_p99 = p99 ITL x p99 output length, an upper bound without prefill or queueing. SLA 60 s = the slowest variant p99 bound at the smallest cap (Qwen3-30B-A3B-Instruct-2507, cap 8: 57.9 s) rounded up to the next 10 s (assumed: a round SLA just above the slowest path; the SLA rule of IPA, ipa_baseline.rules.ipa_sla_ms, is not applied to these profiles): every variant fits at cap 8, larger caps only where their p99 bound fits. Quality: MMLU-Pro from each model card or report (profiles/quality/mlenergy_quality.yaml). Qwen3-8B/14B are measured by ML.ENERGY but left out: no published MMLU-Pro of the post-trained models was found.'
IMG="$M/Efficient-Large-Model__SANA1.5_4.8B_1024px_diffusers__text-to-image.json"
SD35M="$M/stabilityai__stable-diffusion-3.5-medium__text-to-image.json"
SD35L="$M/stabilityai__stable-diffusion-3.5-large__text-to-image.json"
FLUX="$M/black-forest-labs__FLUX.1-dev__text-to-image.json"
$PY -m energy.import_mlenergy "$IMG" "$SD35M" "$SD35L" "$FLUX" "${COMMON[@]}" --stage-name image \
  --batches 1 2 4 8 16 --sla-ms 20000 \
  --out profiles/t2i_h100.yaml --notes 'One text-to-image stage (1024x1024) on H100s, one GPU per replica; the batch knob is the diffusers batch size (1 to 16, all measured by ML.ENERGY). Step counts are those of the ML.ENERGY runs: SANA1.5 20, SD-3.5 28, FLUX.1-dev 50. A row is one batch: latency_mean = measured batch latency; the files give no latency distribution, so latency_p99 = latency_mean (fixed step count). SLA 20 s = the slowest variant at batch 1 (FLUX.1-dev, 11.6 s) rounded up to the next 10 s (assumed: a round SLA just above the slowest path; the SLA rule of IPA, ipa_baseline.rules.ipa_sla_ms, is not applied to these profiles): every variant fits at batch 1, larger batches only where they fit. Quality: GenEval overall in % from one table (Flow-GRPO, arXiv:2505.05470v5, Table 1; profiles/quality/mlenergy_quality.yaml). On these cited scores SANA1.5 4.8B has the highest GenEval and the lowest J/image and latency of the four, so it dominates the others.'
$PY -m energy.import_mlenergy "${COMMON[@]}" \
  --stage "chat=$(IFS=,; echo "${CHAT[*]}")" \
  --stage "image=$IMG,$SD35M,$SD35L" \
  --replica-gpus google/gemma-3-27b-it=2 --batches 8 16 --sla-ms 110000 \
  --out profiles/chat_to_image_h100.yaml --notes 'A chat LLM writes the image prompt, a text-to-image model draws it (1024x1024; 20 steps SANA1.5, 28 steps SD-3.5), both on H100s. Batch knob: the concurrency cap (chat) and the batch size (image); batch_sizes [8, 16] are the ones both stages measured (image rows 1-4 are kept for partial batches). The chat rows are the measured lm-arena-chat workload (389-927 mean output tokens), longer than a typical image prompt, so the chat stage is pessimistic. SLA 110 s = slowest path at the smallest batch (Qwen3-30B-A3B-Instruct-2507 cap 8 p99 bound 57.9 s + stable-diffusion-3.5-large batch 8 49.1 s = 107.0 s) rounded up to the next 10 s (assumed: a round SLA just above the slowest path; the SLA rule of IPA, ipa_baseline.rules.ipa_sla_ms, is not applied to these profiles). Image quality: GenEval overall in % from one table (Flow-GRPO, arXiv:2505.05470v5, Table 1). FLUX.1-dev (in t2i_h100) is left out of this pipeline: it is below stable-diffusion-3.5-large on GenEval (66 vs 71), J/image and latency, and its batch-8 latency (88.0 s) would push the SLA to 150 s.'
