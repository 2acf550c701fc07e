#!/usr/bin/env node
// Finds the libtorch to build against, in the order the design fixes:
//   1. LIBTORCH=<prefix>            a libtorch distribution (has share/cmake/Torch)
//   2. LIBTORCH_USE_PYTORCH=1       the libtorch inside python3's torch package (CUDA on GPU hosts)
//   3. the system's                 Debian's libtorch-dev (CPU, 1.13)
// Both builders use it: CMakeLists.txt asks for `--cmake-prefix`, binding.gyp for compiler and linker
// flags, so cmake-js and node-gyp always agree on which libtorch they link.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const SYSTEM_PREFIX = '/usr';
const SYSTEM_CMAKE = '/usr/lib/x86_64-linux-gnu/cmake/Torch';

function fail(message) {
  process.stderr.write(`libtorch: ${message}\n`);
  process.exit(2);
}

function find() {
  if (process.env.LIBTORCH) {
    const prefix = path.resolve(process.env.LIBTORCH);
    const cmakeDir = path.join(prefix, 'share', 'cmake', 'Torch');
    if (!fs.existsSync(path.join(cmakeDir, 'TorchConfig.cmake'))) {
      fail(`LIBTORCH=${prefix} has no share/cmake/Torch/TorchConfig.cmake: point it at an unpacked libtorch`);
    }
    return { source: 'LIBTORCH', prefix, cmakePrefix: prefix, libDir: path.join(prefix, 'lib'), incDir: path.join(prefix, 'include') };
  }
  if (process.env.LIBTORCH_USE_PYTORCH === '1') {
    let cmakePrefix;
    try {
      cmakePrefix = execFileSync('python3', ['-c', 'import torch.utils; print(torch.utils.cmake_prefix_path)'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }).trim();
    } catch (e) {
      fail(
        `LIBTORCH_USE_PYTORCH=1 but python3 cannot import torch (${String(e.stderr || e.message)
          .trim()
          .split('\n')
          .pop()})`,
      );
    }
    if (!fs.existsSync(path.join(cmakePrefix, 'Torch', 'TorchConfig.cmake'))) {
      fail(
        `LIBTORCH_USE_PYTORCH=1 but python3's torch ships no CMake files under ${cmakePrefix} (Debian's python3-torch has none): install PyTorch's wheel or set LIBTORCH`,
      );
    }
    const prefix = path.resolve(cmakePrefix, '..', '..');
    return { source: 'pytorch', prefix, cmakePrefix, libDir: path.join(prefix, 'lib'), incDir: path.join(prefix, 'include') };
  }
  if (fs.existsSync(path.join(SYSTEM_CMAKE, 'TorchConfig.cmake'))) {
    return {
      source: 'system',
      prefix: SYSTEM_PREFIX,
      cmakePrefix: path.dirname(SYSTEM_CMAKE),
      libDir: '/usr/lib/x86_64-linux-gnu',
      incDir: '/usr/include',
    };
  }
  return null;
}

// Which c10d backends the build can compile against: the backend's headers must ship with the
// libtorch (PyTorch's wheels and Debian's libtorch-dev have c10d's) and its library's headers must be
// found — Gloo's (Debian: libgloo-dev), NCCL's (CUDA builds: the nvidia-nccl wheel next to torch, or
// the system's). Returns the defines and include directories that turn them on.
function distributed(lt) {
  const c10d = path.join(lt.incDir, 'torch', 'csrc', 'distributed', 'c10d');
  const findInclude = (file, dirs) => dirs.find((d) => fs.existsSync(path.join(d, file))) ?? null;
  const glooInc = fs.existsSync(path.join(c10d, 'ProcessGroupGloo.hpp'))
    ? findInclude(path.join('gloo', 'config.h'), [lt.incDir, '/usr/include', '/usr/local/include'])
    : null;
  const cuda = fs.existsSync(path.join(lt.libDir, 'libtorch_cuda.so'));
  const ncclInc =
    cuda && fs.existsSync(path.join(c10d, 'ProcessGroupNCCL.hpp'))
      ? findInclude('nccl.h', [
          lt.incDir,
          path.join(lt.prefix, '..', 'nvidia', 'nccl', 'include'),
          '/usr/include',
          '/usr/local/include',
          '/usr/local/cuda/include',
        ])
      : null;
  const defines = [];
  const includes = [];
  // c10d's headers declare each backend only under its USE_C10D_* macro (Torch's CMake targets set
  // them; node-gyp has no such targets)
  if (glooInc) {
    defines.push('STAGED_LM_GLOO=1', 'USE_C10D_GLOO');
    includes.push(glooInc);
  }
  if (ncclInc) {
    defines.push('STAGED_LM_NCCL=1', 'USE_C10D_NCCL');
    includes.push(ncclInc);
  }
  if (defines.length > 0) defines.push('USE_DISTRIBUTED');
  // the compiler's own directories stay out of -I (a -I/usr/include breaks libstdc++'s #include_next)
  const system = new Set(['/usr/include', '/usr/local/include', path.resolve(lt.incDir)]);
  const extra = [...new Set(includes.map((d) => path.resolve(d)))].filter((d) => !system.has(d));
  return { gloo: glooInc !== null, nccl: ncclInc !== null, defines, includes: extra };
}

// gyp splits `<!@(...)` output the way sh does (shlex), so each word is quoted: the string defines keep their
// double quotes (STAGED_LM_LIBTORCH_SOURCE="system" stays a C string) and a path with spaces stays one word.
function shellWord(word) {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function gypFlags(lt) {
  const has = (lib) => fs.existsSync(path.join(lt.libDir, `lib${lib}.so`));
  const dist = distributed(lt);
  const includes = [lt.incDir, path.join(lt.incDir, 'torch', 'csrc', 'api', 'include'), ...dist.includes];
  // libtorch_cuda registers CUDA kernels from static initialisers only: nothing references it by symbol,
  // so --as-needed would drop it and CUDA would silently report unavailable.
  const cuda = has('torch_cuda') ? ['-Wl,--no-as-needed', '-ltorch_cuda', '-lc10_cuda', '-Wl,--as-needed'] : [];
  const libs = [
    `-L${lt.libDir}`,
    '-Wl,--no-as-needed',
    '-ltorch',
    '-ltorch_cpu',
    '-lc10',
    '-Wl,--as-needed',
    ...cuda,
    `-Wl,-rpath,${lt.libDir}`,
  ];
  const defines = ['_GLIBCXX_USE_CXX11_ABI=1', `STAGED_LM_LIBTORCH_SOURCE="${lt.source}"`, `STAGED_LM_LIBTORCH_PREFIX="${lt.prefix}"`];
  if (cuda.length) defines.push('STAGED_LM_CUDA=1');
  defines.push(...dist.defines);
  return { includes, libs, defines };
}

const lt = find();
const arg = process.argv[2] || '--json';
if (!lt) {
  if (arg === '--exists') process.exit(1);
  fail(
    "no libtorch found: set LIBTORCH=<prefix>, or LIBTORCH_USE_PYTORCH=1, or install Debian's libtorch-dev (bash scripts/setup.sh does)",
  );
}
switch (arg) {
  case '--exists':
    process.exit(0);
    break;
  case '--cmake-prefix':
    process.stdout.write(lt.cmakePrefix);
    break;
  case '--source':
    process.stdout.write(lt.source);
    break;
  case '--prefix':
    process.stdout.write(lt.prefix);
    break;
  case '--gyp-includes':
    process.stdout.write(gypFlags(lt).includes.map(shellWord).join(' '));
    break;
  case '--gyp-libs':
    process.stdout.write(gypFlags(lt).libs.map(shellWord).join(' '));
    break;
  case '--gyp-defines':
    process.stdout.write(gypFlags(lt).defines.map(shellWord).join(' '));
    break;
  case '--cmake-dist-defines':
    process.stdout.write(distributed(lt).defines.join(';'));
    break;
  case '--cmake-dist-includes':
    process.stdout.write(distributed(lt).includes.join(';'));
    break;
  case '--json':
    process.stdout.write(JSON.stringify({ ...lt, distributed: distributed(lt) }) + '\n');
    break;
  default:
    fail(`unknown option ${arg}`);
}
