# The oneDNN addon (build/Release/resnet_native.node), built by scripts/build_native.mjs.
{
  "targets": [
    {
      "target_name": "resnet_native",
      "sources": [
        "native/addon.cc",
        "native/engine.cc",
        "native/buffers.cc",
        "native/storage.cc",
        "native/conv.cc",
        "native/chain.cc",
        "native/batch_norm.cc",
        "native/pool.cc",
        "native/eltwise.cc",
        "native/binary.cc",
        "native/inner_product.cc",
        "native/loss.cc",
        "native/sgd.cc",
        "native/reduce.cc",
        "native/detect.cc",
        "native/bench.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14"],
      # No -march: the addon must load on any x86-64 (oneDNN picks its own kernels at run time).
      # Our few hot loops (native/batch_norm.cc) are built per instruction set and dispatched.
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti", "-fopenmp", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldnnl"]
    }
  ]
}
