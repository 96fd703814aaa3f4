{
  "targets": [
    {
      "target_name": "multiproc",
      "sources": [
        "src/native/addon.cc",
        "src/native/util.cc",
        "src/native/mapping.cc",
        "src/native/shm.cc",
        "src/native/futex.cc",
        "src/native/bell.cc",
        "src/native/mutex.cc",
        "src/native/mqueue.cc",
        "src/native/sysv_msg.cc",
        "src/native/process.cc",
        "src/native/fd.cc",
        "src/native/socket.cc",
        "src/native/file_lock.cc"
      ],
      "cflags_cc!": ["-std=gnu++17", "-fno-exceptions"],
      "cflags_cc": ["-std=c++20", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-cast-function-type", "-fexceptions"],
      "libraries": ["-lrt", "-lpthread", "-ldl"]
    }
  ]
}
