{
  "targets": [
    {
      "target_name": "xdp_ids_native",
      "sources": [
        "src/addon.cc",
        "src/common.cc",
        "src/bpf_object.cc",
        "src/bpf_map.cc",
        "src/ring_buffer.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_cc": ["-fexceptions", "-std=c++17"],
      "libraries": ["-lbpf", "-lelf", "-lz"],
      "configurations": {
        "Release": { "cflags!": ["-O3"], "cflags_cc!": ["-O3"] }
      }
    }
  ]
}
