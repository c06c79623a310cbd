{
  "targets": [
    {
      "target_name": "pgn_ood",
      "sources": [
        "native/core/components.cc",
        "native/core/components_grid.cc",
        "native/core/components_labeling.cc",
        "native/core/components_merge.cc",
        "native/core/components_stats.cc",
        "native/core/cpu_isa.cc",
        "native/core/huge_pages.cc",
        "native/core/instance_metrics.cc",
        "native/core/map_summary.cc",
        "native/core/normalize.cc",
        "native/core/parallel.cc",
        "native/core/pixel_metrics.cc",
        "native/core/pixel_metrics_binned.cc",
        "native/core/pixel_metrics_exact.cc",
        "native/core/power_sums_avx2.cc",
        "native/core/power_sums_avx512.cc",
        "native/core/scores.cc",
        "native/core/second_layer.cc",
        "native/core/upsample.cc",
        "native/binding/addon.cc",
        "native/binding/args.cc",
        "native/binding/backends.cc",
        "native/binding/components_binding.cc",
        "native/binding/metrics_binding.cc",
        "native/binding/normalize_binding.cc",
        "native/binding/pinned_memory.cc",
        "native/binding/release_binding.cc",
        "native/binding/scores_binding.cc",
        "native/binding/second_layer_binding.cc",
        "native/binding/summary_binding.cc",
        "native/binding/upsample_binding.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fno-math-errno", "-fno-trapping-math"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno", "-fno-trapping-math"]
      },
      "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1 } }
    }
  ]
}
