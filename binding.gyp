# The same addon as CMakeLists.txt, for node-gyp (`bash scripts/build-gyp.sh` proves it builds).
# cmake-js stays the main builder ("gypfile": false in package.json): both share build/, don't interleave them.
# libtorch comes from scripts/libtorch.js, the discovery CMakeLists.txt uses, so both link the same one.
{
  'targets': [
    {
      'target_name': 'staged_lm',
      'sources': [
        'native/addon.cc',
        'native/tensor.cc',
        'native/cpu_allocator.cc',
        'native/creation.cc',
        'native/data.cc',
        'native/shape_ops.cc',
        'native/math_ops.cc',
        'native/nn_ops.cc',
        'native/loss.cc',
        'native/norm.cc',
        'native/autograd.cc',
        'native/op_count.cc',
        'native/profiler.cc',
        'native/runtime.cc',
        'native/optim.cc',
        'native/io.cc',
        'native/distributed.cc',
        'native/cuda_graph.cc',
      ],
      'include_dirs': [
        # `.include` is the path in double quotes: `<!@` splits it like sh, which drops them
        '<!@(node -p "require(\'node-addon-api\').include")',
        '<!@(node scripts/libtorch.js --gyp-includes)',
      ],
      'defines': [
        # as CMakeLists.txt: synchronous (basic) finalizers need the experimental Node-API level
        'NAPI_EXPERIMENTAL',
        'NAPI_VERSION=2147483647',
        'NAPI_CPP_EXCEPTIONS',
        'NODE_ADDON_API_CPP_EXCEPTIONS_ALL',
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        'STAGED_LM_BUILD_TYPE="Release"',
        # _GLIBCXX_USE_CXX11_ABI, STAGED_LM_LIBTORCH_SOURCE/PREFIX, STAGED_LM_CUDA=1 on a CUDA libtorch,
        # STAGED_LM_GLOO / STAGED_LM_NCCL for the c10d backends whose headers are there
        '<!@(node scripts/libtorch.js --gyp-defines)',
      ],
      # Node's common.gypi compiles C++ as gnu++17 without exceptions or RTTI (libtorch and
      # NAPI_CPP_EXCEPTIONS need both) and adds -Wextra; warnings as CMakeLists.txt: -Wall -Wno-unused-parameter.
      'cflags!': ['-fno-exceptions', '-fno-rtti', '-Wextra'],
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti', '-std=gnu++17'],
      'cflags_cc': ['-std=c++17', '-fexceptions', '-frtti'],
      # -L, -ltorch… in --no-as-needed (libtorch_cuda registers its kernels from static initialisers), rpath
      # -ldl: dladdr/dlopen (native/profiler.cc), in libc itself only from glibc 2.34
      'libraries': ['<!@(node scripts/libtorch.js --gyp-libs)', '-ldl'],
    },
  ],
}
