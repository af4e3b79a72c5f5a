# The native backend: an N-API addon (C) over OpenBLAS (CBLAS) and LAPACKE. Built at install by
# scripts/build-native.mjs (`node-gyp --directory native rebuild`) when the libraries are present.
# LOWRANK_BLAS_CFLAGS / LOWRANK_BLAS_LIBS override the compile flags (e.g. "-I/opt/openblas/include")
# and the link flags (default "-llapacke -lopenblas"); the build script sets them from its probe.
{
  "targets": [
    {
      "target_name": "lowrank_native",
      "sources": ["lowrank.c", "nn.c", "skinny.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=c11", "-fno-trapping-math", "<!@(node -p \"process.env.LOWRANK_BLAS_CFLAGS || ''\")"],
      "libraries": ["<!@(node -p \"process.env.LOWRANK_BLAS_LIBS || '-llapacke -lopenblas'\")", "-lm"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-std=c11", "-fno-trapping-math", "<!@(node -p \"process.env.LOWRANK_BLAS_CFLAGS || ''\")"]
      }
    }
  ]
}
