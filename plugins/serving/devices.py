"""The built-in device table (``--device NAME``), each figure with its public source.

Peaks are *dense* (the datasheets' "with sparsity" figures halved) and are the
most the part can do, because the serving analyzer only divides by them to get
lower bounds on time. Where a part has two rates for one dtype (Ada's FP16 with
FP16 or FP32 accumulate) the higher one is listed. Plugins add devices through the
``model_analyze_devices`` hook.
"""

from __future__ import annotations

from model_analyze.devices import Device

T = 1e12
G = 1e9
MB = 1e6
GB = 1e9

DEVICES: tuple[Device, ...] = (
    # NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h100), SXM column:
    # FP64 34 / FP64 tensor 67 / FP32 67 TFLOPS; TF32 989, BF16 and FP16 1,979, FP8 3,958 TFLOPS and
    # INT8 3,958 TOPS "with sparsity" (dense: half); 80 GB HBM3 at 3.35 TB/s. L2 50 MB: NVIDIA
    # Hopper architecture in-depth (developer.nvidia.com/blog/nvidia-hopper-architecture-in-depth).
    Device("h100", "NVIDIA H100 SXM5 80GB",
           {"fp64": 67 * T, "fp32": 67 * T, "tf32": 494.7 * T, "bf16": 989.4 * T, "fp16": 989.4 * T,
            "fp8": 1978.9 * T, "int8": 1978.9 * T},
           bandwidth=3.35e12, memory=80 * GB, cache=50 * MB,
           source="NVIDIA H100 datasheet (SXM); dense = sparse/2", aliases=("h100-sxm", "h100sxm")),
    # NVIDIA A100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/a100): FP64 tensor 19.5,
    # FP32 19.5, TF32 156, BF16/FP16 312 TFLOPS, INT8 624, INT4 1,248 TOPS (dense); A100 80GB SXM:
    # 2,039 GB/s HBM2e. L2 40 MB: NVIDIA A100 Tensor Core GPU architecture whitepaper.
    Device("a100", "NVIDIA A100 SXM4 80GB",
           {"fp64": 19.5 * T, "fp32": 19.5 * T, "tf32": 156 * T, "bf16": 312 * T, "fp16": 312 * T,
            "int8": 624 * T, "int4": 1248 * T},
           bandwidth=2.039e12, memory=80 * GB, cache=40 * MB,
           source="NVIDIA A100 datasheet (80GB SXM)", aliases=("a100-80gb", "a100-sxm")),
    # NVIDIA L4 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/l4): FP32 30.3 TFLOPS;
    # TF32 120, BF16/FP16 242, FP8 485 TFLOPS and INT8 485 TOPS with sparsity (dense: half);
    # 24 GB GDDR6 at 300 GB/s. L2 48 MB: NVIDIA Ada GPU architecture whitepaper v2.01.
    Device("l4", "NVIDIA L4 24GB",
           {"fp32": 30.3 * T, "tf32": 60 * T, "bf16": 121 * T, "fp16": 121 * T, "fp8": 242.5 * T,
            "int8": 242.5 * T},
           bandwidth=300 * G, memory=24 * GB, cache=48 * MB,
           source="NVIDIA L4 datasheet; dense = sparse/2"),
    # NVIDIA Ada GPU architecture whitepaper v2.01, appendix (GeForce RTX 4090): FP32 82.6 TFLOPS;
    # tensor TF32 82.6, BF16 165.2, FP16 330.3 (FP16 accumulate; 165.2 with FP32 accumulate),
    # FP8 660.6 TFLOPS, INT8 660.6 TOPS (dense); 24 GB GDDR6X at 1,008 GB/s; L2 72 MB.
    Device("rtx4090", "NVIDIA GeForce RTX 4090",
           {"fp32": 82.6 * T, "tf32": 82.6 * T, "bf16": 165.2 * T, "fp16": 330.3 * T, "fp8": 660.6 * T,
            "int8": 660.6 * T},
           bandwidth=1008 * G, memory=24 * GB, cache=72 * MB,
           source="NVIDIA Ada GPU architecture whitepaper v2.01", aliases=("4090", "rtx-4090")),
    # Apple M2 Max (Apple Newsroom, 2023-01-17, "Apple unveils M2 Pro and M2 Max"): up to a 38-core
    # GPU, 400 GB/s unified memory bandwidth, up to 96 GB; its 16-core Neural Engine is M2's
    # (Apple Newsroom, 2022-06-06: 15.8 trillion operations per second). GPU FP32 peak: 38 cores x
    # 128 ALUs x 2 FLOP (FMA) x 1.398 GHz = 13.6 TFLOPS; Apple GPUs of this generation run FP16 at the
    # FP32 rate, so fp16/int8 take the Neural Engine's 15.8 T ops, the faster unit. Cache: the 48 MB
    # system-level cache reported by die analyses (Apple publishes none); a larger figure only makes
    # the bound drop its memory side sooner, never tighter than the truth.
    Device("m2max", "Apple M2 Max (38-core GPU)",
           {"fp32": 13.6 * T, "fp16": 15.8 * T, "bf16": 13.6 * T, "int8": 15.8 * T},
           bandwidth=400 * G, memory=96 * GB, cache=48 * MB,
           source="Apple Newsroom (M2 Max, M2 Neural Engine); GPU peak = 38x128x2x1.398 GHz",
           aliases=("m2-max", "apple-m2-max")),
    # One x86 core with AVX-512 and two FMA ports (Intel Xeon Scalable Gold/Platinum; Intel 64 and
    # IA-32 Optimization Reference Manual): per cycle 2 x 16 fp32 FMA = 64 FLOP, 2 x 8 fp64 = 32,
    # AVX512_BF16 VDPBF16PS 2 x 32 pairs = 128, AVX512-FP16 2 x 32 = 128, AVX512_VNNI VPDPBUSD
    # 2 x 64 int8 MAC = 256 OP; at an assumed 3.0 GHz all-core AVX-512 clock (no AMX). Bandwidth:
    # one DDR5-4800 channel, 4800 MT/s x 8 B = 38.4 GB/s (more than one core usually draws);
    # cache: 2 MB L2 per core. Describe a real part with --device flops=…,bandwidth=….
    Device("avx512-core", "one x86 AVX-512 core at 3.0 GHz",
           {"fp64": 96 * G, "fp32": 192 * G, "bf16": 384 * G, "fp16": 384 * G, "int8": 768 * G},
           bandwidth=38.4 * G, memory=None, cache=2 * MB,
           source="2 FMA ports x 512-bit at 3.0 GHz; one DDR5-4800 channel", aliases=("avx512", "x86")),
)
