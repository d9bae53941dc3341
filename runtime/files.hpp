// Files that must never be seen half written: formatted sources (`fmt -i`),
// search checkpoints, kernel caches; and reading a file whole.
#pragma once

#include <string>
#include <string_view>

namespace lossforge {

// Replaces `path` with `contents` atomically: readers see either the old file
// or the new one, never a mix, and a crash leaves the old file intact. Writes a
// temporary file next to the target, fsyncs it, renames it over the target and
// fsyncs the directory. An existing file keeps its permission bits; a symbolic
// link is followed, so the file it points to is replaced. Throws lossforge::Error
// naming the path when any step fails (the temporary file is removed then).
void write_file_atomic(const std::string& path, std::string_view contents);

// The whole file as bytes. Throws lossforge::Error naming the path when it
// cannot be read.
std::string read_file(const std::string& path);

}  // namespace lossforge
