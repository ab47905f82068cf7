{
  "targets": [
    {
      "target_name": "execsentry",
      "sources": ["native/addon.cc", "native/file_lock.cc", "native/unix_datagram.cc", "native/connector.cc", "native/procfs.cc", "native/procfs_js.cc", "native/nss.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
