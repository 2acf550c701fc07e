// `staged-lm doctor`: what this installation runs on — libtorch, build, CUDA devices.
import { lossKernelInfo, normKernelInfo } from '../kernels';
import { buildInfo, getNumThreads, memoryStats } from '../runtime';
import { native } from '../native';
import { profilerAvailable } from '../profile';
import { autoPrecision } from '../train/precision';
import { packageVersion } from './version';
import { distributedSupport, distributedUnavailableReason } from '../distributed/process-group';

export interface DoctorReport {
  stagedLm: string;
  node: string;
  libtorch: { version: string; source: string; prefix: string; cudaBuild: boolean; cxx11Abi: boolean };
  buildType: string;
  cpuThreads: number;
  /** Where CPU tensor blocks of 1 MiB and more come from: staged-lm's block cache, or malloc (STAGED_LM_DEFAULT_MALLOC). */
  cpuAllocator: 'block-cache' | 'malloc';
  flashAttention: boolean;
  /** Whole-step CUDA-graph capture (bench --cuda-graph): a CUDA libtorch whose graph API compiled. */
  cudaGraphs: boolean;
  /** The fused CUDA cross-entropy (native/kernels): built here, and whether the model's loss uses it. */
  lossKernel: { fusedAvailable: boolean; default: 'aten' | 'fused' };
  /** The fused CUDA residual add + LayerNorm (native/kernels): built here, and whether the model uses it. */
  normKernel: { fusedAvailable: boolean; default: 'aten' | 'fused' };
  /** libtorch's Kineto profiler (profileToFile, train/bench --profile): in pip's PyTorch, not in Debian's libtorch. */
  profiler: boolean;
  /** c10d backends for data-parallel jobs (staged-lm launch); `reason` when there is none. */
  distributed: { gloo: boolean; nccl: boolean; reason: string | null };
  cuda: {
    available: boolean;
    devices: {
      index: number;
      name: string;
      totalMemoryGiB: number;
      computeCapability: string;
      /** What a run's precision 'auto' trains in there: bf16 with bf16 tensor cores (sm 8.0+), else fp16 with loss scaling. */
      autoPrecision: 'bf16' | 'fp16';
      freeGiB?: number;
    }[];
  };
}

const GiB = 2 ** 30;
const round2 = (x: number) => Math.round(x * 100) / 100;

export function doctorReport(): DoctorReport {
  const info = buildInfo();
  const mem = memoryStats();
  const kernel = ({ available, default: d }: { available: boolean; default: 'aten' | 'fused' }) => ({
    fusedAvailable: available,
    default: d,
  });
  return {
    stagedLm: packageVersion(),
    node: process.version,
    libtorch: {
      version: info.torchVersion,
      source: info.libtorchSource,
      prefix: info.libtorchPrefix,
      cudaBuild: info.cudaBuild,
      cxx11Abi: info.cxx11Abi,
    },
    buildType: info.buildType,
    cpuThreads: getNumThreads(),
    cpuAllocator: mem.cpu === null ? 'malloc' : 'block-cache',
    flashAttention: native.hasFlashAttention,
    cudaGraphs: native.hasCudaGraphs,
    lossKernel: kernel(lossKernelInfo()),
    normKernel: kernel(normKernelInfo()),
    profiler: profilerAvailable(),
    distributed: { ...distributedSupport(), reason: distributedUnavailableReason() },
    cuda: {
      available: info.cudaAvailable,
      devices: info.devices.map((d) => {
        const free = mem.cuda.find((m) => m.device === d.index)?.free;
        return {
          index: d.index,
          name: d.name,
          totalMemoryGiB: round2(d.totalMemory / GiB),
          computeCapability: d.computeCapability,
          autoPrecision: autoPrecision(`cuda:${d.index}`, info.devices) === 'fp16' ? 'fp16' : 'bf16',
          ...(free === undefined ? {} : { freeGiB: round2(free / GiB) }),
        };
      }),
    },
  };
}

export function formatDoctor(r: DoctorReport): string {
  const lines = [
    `staged-lm ${r.stagedLm} on Node ${r.node}`,
    `libtorch  ${r.libtorch.version} (${r.libtorch.source}: ${r.libtorch.prefix}), ${r.libtorch.cudaBuild ? 'CUDA build' : 'CPU build'}, ${r.buildType}`,
    `cpu       ${r.cpuThreads} thread(s), tensor blocks of 1 MiB+ ${r.cpuAllocator === 'block-cache' ? "from staged-lm's block cache" : 'from malloc (STAGED_LM_DEFAULT_MALLOC)'}`,
    `attention ${r.flashAttention ? 'scaled_dot_product_attention (flash / memory-efficient kernels on CUDA)' : 'math SDPA (libtorch < 2.0: no flash kernels)'}`,
    `parallel  ${
      r.distributed.reason === null
        ? `data parallel over c10d: ${[r.distributed.gloo ? 'gloo (CPU)' : '', r.distributed.nccl ? 'nccl (CUDA)' : ''].filter(Boolean).join(', ')}`
        : `no data parallelism: ${r.distributed.reason}`
    }`,
    `cuda      ${r.cuda.available ? `${r.cuda.devices.length} device(s)` : 'not available'}, CUDA graphs ${r.cudaGraphs ? 'available' : 'not in this build'}`,
  ];
  lines.push(`loss      ${kernelLine(r.lossKernel, 'STAGED_LM_LOSS_KERNEL', 'CUDA logits')}`);
  lines.push(`add+norm  ${kernelLine(r.normKernel, 'STAGED_LM_NORM_KERNEL', 'CUDA tensors it takes')}`);
  lines.push(
    `profiler  ${r.profiler ? "libtorch's Kineto: train --profile, bench --profile" : "none: this libtorch has no Kineto (pip's PyTorch has it)"}`,
  );
  for (const d of r.cuda.devices) {
    lines.push(
      `  cuda:${d.index}  ${d.name}, ${d.totalMemoryGiB} GiB${d.freeGiB === undefined ? '' : ` (${d.freeGiB} GiB free)`}, sm ${d.computeCapability}, precision auto: ${d.autoPrecision}${d.autoPrecision === 'fp16' ? ' (no bf16 tensor cores: fp16 with loss scaling)' : ''}`,
    );
  }
  return lines.join('\n');
}

function kernelLine(k: DoctorReport['lossKernel'], variable: string, where: string): string {
  if (k.fusedAvailable)
    return k.default === 'fused'
      ? `the fused CUDA kernel on ${where}, libtorch's elsewhere`
      : `libtorch's kernels; the fused CUDA kernel is built (${variable}=fused to use it)`;
  return k.default === 'fused'
    ? `libtorch's kernels: ${variable}=fused asks for the fused CUDA kernel, which this build does not have`
    : "libtorch's kernels (no fused CUDA kernel in this build)";
}
