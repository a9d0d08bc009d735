// An OpenCode server plugin that every `opencode serve` langgraph-opencode
// starts loads (see server.py). It hides the server's password from the
// commands the agents run, which would otherwise inherit it:
//
// 1. It deletes OPENCODE_SERVER_PASSWORD from process.env. OpenCode 1.18.33
//    read the password once, when it built its HTTP layer, and keeps checking
//    requests against that copy; its bash tool, session shell and PTY spread
//    process.env into every child, and do so only after this plugin has
//    loaded in the session's directory (they wait for the "shell.env" hook).
// 2. It overwrites the value in the environment block the kernel shows as
//    /proc/<pid>/environ (the exec-time copy, untouched by 1.) with "*".
// 3. It makes the server process non-dumpable (prctl PR_SET_DUMPABLE 0), so
//    that processes of the same user cannot read its /proc/<pid>/environ,
//    /proc/<pid>/mem or /proc/<pid>/maps; only root still can.
//
// 2. and 3. are best effort: a failure is logged and the server goes on.

import fs from "node:fs"

const NAME = "OPENCODE_SERVER_PASSWORD"
const PR_SET_DUMPABLE = 4
let hidden = false

function log(message) {
  console.error(`langgraph-opencode password plugin: ${message}`)
}

function scrubEnvironBlock() {
  // Fields 50 and 51 of /proc/self/stat: where the exec-time environment starts and ends.
  const fields = fs.readFileSync("/proc/self/stat", "latin1").split(")").pop().trim().split(" ")
  const start = Number(fields[47])
  const end = Number(fields[48])
  if (!(start > 0 && end > start)) throw new Error("no environment block in /proc/self/stat")
  const block = Buffer.alloc(end - start)
  const mem = fs.openSync("/proc/self/mem", "r+")
  try {
    fs.readSync(mem, block, 0, block.length, start)
    const key = Buffer.from(`${NAME}=`)
    for (let at = block.indexOf(key); at !== -1; at = block.indexOf(key, at + key.length)) {
      if (at > 0 && block[at - 1] !== 0) continue // the name ends another variable's
      const from = at + key.length
      const nul = block.indexOf(0, from)
      const to = nul === -1 ? block.length : nul
      if (to > from) fs.writeSync(mem, Buffer.alloc(to - from, "*"), 0, to - from, start + from)
    }
  } finally {
    fs.closeSync(mem)
  }
}

async function makeUndumpable() {
  const { dlopen, FFIType } = await import("bun:ffi")
  const { u64 } = FFIType
  const libc = dlopen("libc.so.6", {
    prctl: { args: [FFIType.i32, u64, u64, u64, u64], returns: FFIType.i32 },
  })
  try {
    if (libc.symbols.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) !== 0) throw new Error("prctl failed")
  } finally {
    libc.close()
  }
}

async function hide() {
  if (hidden) return
  hidden = true
  delete process.env[NAME]
  try {
    scrubEnvironBlock()
  } catch (error) {
    log(`could not blank /proc/self/environ: ${error}`)
  }
  try {
    await makeUndumpable()
  } catch (error) {
    log(`could not make the server non-dumpable: ${error}`)
  }
}

export default {
  id: "langgraph-opencode-hide-password",
  server: async () => {
    await hide()
    return {}
  },
}
