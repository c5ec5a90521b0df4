{
  "targets": [
    {
      "target_name": "roost_native",
      "sources": [
        "<!@(python3 -c \"import glob; print(' '.join(sorted(glob.glob('native/core/**/*.cc', recursive=True) + glob.glob('native/binding/*.cc'))))\")"
      ],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include\")",
        "native/core"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').gyp\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=c++17"],
      "cflags_cc": ["-std=c++20", "-fexceptions", "-O3", "-fomit-frame-pointer", "-fvisibility=hidden", "-fno-semantic-interposition", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
