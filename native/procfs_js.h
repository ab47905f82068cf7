// Snapshot → JSON text, shared by the connector (live exec records) and scanProcesses (start-up seed and
// overrun recovery), so JavaScript sees one shape (src/native.ts parseSnapshots). One string per batch,
// parsed by JSON.parse, costs the JavaScript thread a fifth of what setting each property through Node-API
// did (2.3 µs against 10–15 µs per snapshot here).
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "procfs.h"

namespace execsentry {

// Appends the snapshot as a JSON object to *out.
void SnapshotJson(const Snapshot& snapshot, std::string* out);
// Appends group ids as a JSON array to *out.
void GroupsJson(const std::vector<uint32_t>& groups, std::string* out);

// The strings of a JavaScript array (other elements and a non-array: none).
std::vector<std::string> StringList(Napi::Value value);

}  // namespace execsentry
