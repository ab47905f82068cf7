// Snapshot → JavaScript object, shared by the connector (live exec records) and scanProcesses (start-up
// seed and overrun recovery), so JavaScript sees one shape.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "js_keys.h"
#include "procfs.h"

namespace execsentry {

Napi::Object SnapshotToJs(Napi::Env env, const Keys& keys, const Snapshot& snapshot);

// The strings of a JavaScript array (other elements and a non-array: none).
std::vector<std::string> StringList(Napi::Value value);

}  // namespace execsentry
