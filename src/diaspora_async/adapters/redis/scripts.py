"""The Lua scripts that make every Redis write one atomic round trip.

Sits under ``adapter.py``: for each collection the adapter asks ``scripts(layout)``
once and gets an insert, write, update, delete, purge and drop script, each a shared
body behind a prelude that names this collection's keys and indexes as Lua string
literals (every byte written as a decimal escape, so no name can break out of its
literal). A script checks everything that can refuse a batch first (duplicate ids,
unique values) and only then writes, so a refused batch writes nothing; it reads the old
indexed values itself, so index maintenance needs no extra round trip. Values arrive as
ARGV and are only ever used as data (hash fields, set members, key suffixes), never as
patterns. Errors are returned as ``{code, ...}`` tables, not raised, so the reply stream
stays in step.

The write script is the revision guard of ``Adapter.write`` (DESIGN.md 6.1): per row it
reads the stored ``_rev``/``_del`` (an ``EXISTS``, and for a stored key one ``HMGET``
that also fetches the old indexed values), orders the fixed-width revisions as bytes
(not with Lua's locale-dependent ``<``: see ``_WRITE``) and applies the admitted rows,
with unique fields only once every row's values passed their check. Tombstones:
``layout.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .layout import Layout

__all__ = ["Script", "Scripts", "scripts"]


@dataclass(frozen=True, slots=True)
class Script:
    """A script's source and its SHA1 (for ``EVALSHA``)."""

    source: bytes
    sha: str


@dataclass(frozen=True, slots=True)
class Scripts:
    """The write scripts of one collection."""

    insert: Script
    write: Script
    update: Script
    delete: Script
    purge: Script
    drop: Script

    def all(self) -> tuple[Script, ...]:
        """Every script (for ``SCRIPT LOAD``)."""
        return (self.insert, self.write, self.update, self.delete, self.purge, self.drop)


def _lit(text: str) -> str:
    return '"' + "".join(f"\\{b}" for b in text.encode()) + '"'


def _table(entries: dict[str, str]) -> str:
    return "{" + ", ".join(f"[{_lit(k)}] = {_lit(v)}" for k, v in entries.items()) + "}"


# Shared helpers, emitted only for collections that have indexes or unique fields.
_OLD_VALS = """
local function old_vals(key)
  local out = {}
  local got = redis.call('HMGET', key, unpack(WATCHED))
  for i, f in ipairs(WATCHED) do
    if got[i] then out[f] = got[i] end
  end
  return out
end
"""

# A unique value may be claimed by ``id`` if no other entity holds it, in the store or
# earlier in this batch.
_CLAIM = """
local function claim(claims, f, hk, v, id)
  local c = claims[f]
  if not c then c = {}; claims[f] = c end
  local owner = c[v] or redis.call('HGET', hk, v)
  if owner and owner ~= id then return false end
  c[v] = id
  return true
end
"""

# ARGV: per row: npairs, then npairs (field, value) pairs; the first pair is ("id", id).
_INSERT = """
local i, n, seen, claims = 1, #ARGV, {}, {}
while i <= n do
  local last = i + 2 * tonumber(ARGV[i])
  local id = ARGV[i + 2]
  -- the key exists iff a live copy or a tombstone does: both make the id a duplicate
  if seen[id] or redis.call('EXISTS', EK .. id) == 1 then return {'dup', id} end
  seen[id] = true
  $CHECK
  i = last + 1
end
i = 1
while i <= n do
  local last = i + 2 * tonumber(ARGV[i])
  local id = ARGV[i + 2]
  redis.call('HSET', EK .. id, unpack(ARGV, i + 1, last))
  redis.call('ZADD', IDS, 0, id)
  $ADD
  i = last + 1
end
return 0
"""

_ROW_VALS = """local vals = {}
  for j = i + 1, last, 2 do vals[ARGV[j]] = ARGV[j + 1] end"""

# ARGV: per row: npairs, expectation, then either npairs (field, value) pairs, ("id", id)
# and ("_rev", revision) first (a live row), or, if npairs is 0, id, revision and the
# deletion time in epoch microseconds (a tombstone). Expectation: '-' none (the revision
# guard), 'n' no live copy, '=' .. revision (a live copy holding exactly that one).
# Reply: 0 when every row applied (the common path: an integer is the cheapest reply),
# else {0, index...} of the refused rows (0-based), replays left out; or an error table.
# ``older(a, b)`` is ``a < b`` as bytes: Lua's own ``<`` is ``strcoll`` and Redis sets
# LC_COLLATE from its environment, where a locale may contract letters of the hex alphabet
# ('aa' in Danish, 'dd' in Welsh). So revisions (24 lowercase hex digits, revisions.py)
# compare as two 48-bit numbers, exact in a double; any other string byte by byte. ``==``
# is exact in every locale.
# A key exists iff a live copy or a tombstone does; only then is it read (``held``, one
# HMGET: _rev, _del, then the old WATCHED values), so a new row costs one EXISTS.
# With unique fields, pass 1 decides every row and checks its values and pass 2 writes,
# so a refused batch writes nothing; without, nothing can refuse a batch and each row is
# applied as soon as it is decided (one pass, no per-row table).
_WRITE = """
local function older(a, b)
  if #a == 24 and #b == 24 then
    local x, y = tonumber(string.sub(a, 1, 12), 16), tonumber(string.sub(b, 1, 12), 16)
    if x and y then
      if x ~= y then return x < y end
      x, y = tonumber(string.sub(a, 13), 16), tonumber(string.sub(b, 13), 16)
      if x and y then return x < y end
    end
  end
  for j = 1, math.min(#a, #b) do
    local p, q = string.byte(a, j), string.byte(b, j)
    if p ~= q then return p < q end
  end
  return #a < #b
end
local out = {0}$TABLES
local i, n, k = 1, #ARGV, 0
while i <= n do
  local np = tonumber(ARGV[i])
  local first, last, id, rev = i + 2, i + 4, nil, nil
  if np > 0 then
    last = i + 1 + 2 * np
    id, rev = ARGV[i + 3], ARGV[i + 5]
  else
    id, rev = ARGV[i + 2], ARGV[i + 3]
  end
  local exp, key = ARGV[i + 1], EK .. id
  local held, tomb, exists, have = false, false, false, ''
  if redis.call('EXISTS', key) == 1 then
    held = redis.call('HMGET', key, '_rev', '_del'$FIELDS)
    tomb, exists, have = held[2], true, held[1] or ''
  end
  local ok = false
  if exp == '-' then ok = not exists or older(have, rev)
  elseif exp == 'n' then ok = not exists or (tomb and older(have, rev))
  else ok = exists and not tomb and have == string.sub(exp, 2) end
  if ok then
    $DECIDED
  elseif not held or held[1] ~= rev then
    out[#out + 1] = k
  end
  k = k + 1
  i = last + 1
end
$PASS2
if #out == 1 then return 0 end
return out
"""

# Pass 2 of a collection with unique fields: the rows pass 1 kept, in order.
_PASS2 = """for _, t in ipairs(todo) do
  local np, first, last, id, key, rev, exists, tomb, held, vals = unpack(t)
  $APPLY
end"""

# One admitted row; ``vals`` holds its new WATCHED values (live rows), ``held`` the old.
_APPLY = """if exists then
      $DEL
      redis.call('DEL', key)
    end
    if np > 0 then
      redis.call('HSET', key, unpack(ARGV, first, last))
      if tomb then redis.call('ZREM', TOMBS, id) end
      if tomb or not exists then redis.call('ZADD', IDS, 0, id) end
      $ADD
    else
      redis.call('HSET', key, '_rev', rev, '_del', ARGV[last])
      if exists and not tomb then redis.call('ZREM', IDS, id) end
      redis.call('ZADD', TOMBS, ARGV[last], id)
    end"""

# ARGV: groups of: nset, nset (field, value) pairs, ndel, ndel fields, nids, nids ids.
_UPDATE = """
local groups, claims, matched = {}, {}, 0
local i, n = 1, #ARGV
while i <= n do
  local g = {set = {}, del = {}, ids = {}}
  g.sfirst = i + 1
  g.slast = i + 2 * tonumber(ARGV[i])
  for j = g.sfirst, g.slast, 2 do g.set[ARGV[j]] = ARGV[j + 1] end
  i = g.slast + 1
  g.dfirst = i + 1
  g.dlast = i + tonumber(ARGV[i])
  for j = g.dfirst, g.dlast do g.del[ARGV[j]] = true end
  i = g.dlast + 1
  local last = i + tonumber(ARGV[i])
  for j = i + 1, last do
    local id = ARGV[j]
    if redis.call('ZSCORE', IDS, id) then
      matched = matched + 1
      g.ids[#g.ids + 1] = id
      local vals = g.set
      $CHECK
    end
  end
  i = last + 1
  g.touched = false
  $TOUCH
  groups[#groups + 1] = g
end
for _, g in ipairs(groups) do
  for _, id in ipairs(g.ids) do
    local key = EK .. id
    if g.touched then
      local vals = old_vals(key)
      $DEL
      for f, _ in pairs(g.del) do vals[f] = nil end
      for f, v in pairs(g.set) do vals[f] = v end
      $ADD
    end
    if g.slast >= g.sfirst then redis.call('HSET', key, unpack(ARGV, g.sfirst, g.slast)) end
    if g.dlast >= g.dfirst then redis.call('HDEL', key, unpack(ARGV, g.dfirst, g.dlast)) end
  end
end
return matched
"""

_TOUCH = "for _, f in ipairs(WATCHED) do if g.set[f] or g.del[f] then g.touched = true end end"

# ARGV: ids.
# Tombstones go too (without counting): a delete is unconditional and leaves nothing.
_DELETE = """
local count = 0
for _, id in ipairs(ARGV) do
  local key = EK .. id
  if redis.call('ZREM', IDS, id) == 1 then
    count = count + 1
    $OLD
    redis.call('DEL', key)
  elseif redis.call('ZREM', TOMBS, id) == 1 then
    redis.call('DEL', key)
  end
end
return count
"""

# ARGV: the exclusive upper bound ('(' .. epoch microseconds), the most to remove in one
# run (the caller repeats while a run removes that many, so no run blocks the server
# long). The HEXISTS re-check keeps a live hash safe even if the set ever drifted.
_PURGE = """
local gone = redis.call('ZRANGEBYSCORE', TOMBS, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local count = 0
for _, id in ipairs(gone) do
  local key = EK .. id
  if redis.call('HEXISTS', key, '_del') == 1 then
    redis.call('DEL', key)
    count = count + 1
  end
end
if #gone > 0 then redis.call('ZREM', TOMBS, unpack(gone)) end
return {#gone, count}
"""

_DROP = """
for _, id in ipairs(redis.call('ZRANGE', IDS, 0, -1)) do redis.call('DEL', EK .. id) end
for _, id in ipairs(redis.call('ZRANGE', TOMBS, 0, -1)) do redis.call('DEL', EK .. id) end
for _, k in ipairs(redis.call('SMEMBERS', REG)) do redis.call('DEL', k) end
redis.call('DEL', IDS, REG, TOMBS$AUX)
return 0
"""


def _check(unq: dict[str, str]) -> str:
    """Unique checks, unrolled per field; ``vals`` holds the row's new values."""
    return "\n  ".join(
        f"do local v = vals[{_lit(f)}]; if v and not claim(claims, {_lit(f)}, {_lit(k)}, v, id)"
        f" then return {{'unique', {_lit(f)}, v}} end end"
        for f, k in unq.items()
    )


def _add(num: dict[str, str], eq: dict[str, str], unq: dict[str, str]) -> str:
    """Index entries for ``id`` from ``vals``, unrolled per field."""
    lines = [
        f"do local v = vals[{_lit(f)}]; if v and v ~= 'nan' then "
        f"redis.call('ZADD', {_lit(k)}, v, id) end end"
        for f, k in num.items()
    ]
    lines += [
        f"do local v = vals[{_lit(f)}]; if v then local sk = {_lit(k)} .. v; "
        "redis.call('SADD', sk, id); redis.call('SADD', REG, sk) end end"
        for f, k in eq.items()
    ]
    lines += [
        f"do local v = vals[{_lit(f)}]; if v then redis.call('HSET', {_lit(k)}, v, id) end end"
        for f, k in unq.items()
    ]
    return "\n      ".join(lines)


def _del(num: dict[str, str], eq: dict[str, str], unq: dict[str, str]) -> str:
    """Removal of ``id``'s index entries for the old values in ``vals``."""
    zrem = "if vals[{}] then redis.call('ZREM', {}, id) end"
    lines = [zrem.format(_lit(f), _lit(k)) for f, k in num.items()]
    lines += [
        f"do local v = vals[{_lit(f)}]; if v then redis.call('SREM', {_lit(k)} .. v, id) end end"
        for f, k in eq.items()
    ]
    lines += [
        f"do local v = vals[{_lit(f)}]; if v and redis.call('HGET', {_lit(k)}, v) == id then "
        f"redis.call('HDEL', {_lit(k)}, v) end end"
        for f, k in unq.items()
    ]
    return "\n      ".join(lines)


def _script(source: str) -> Script:
    data = source.encode()
    return Script(data, hashlib.sha1(data, usedforsecurity=False).hexdigest())


def scripts(lay: Layout) -> Scripts:
    """Generate the write scripts of one collection, specialised to its indexes.

    A collection without indexes gets scripts with no index code at all (the insert is
    then a duplicate check, ``HSET`` and ``ZADD`` per row); index maintenance is unrolled
    per field, with keys and stored names as literals.
    """
    st = lay.stored
    num = {st[f]: k for f, k in lay.num.items()}
    eq = {st[f]: k for f, k in lay.eq.items()}
    unq = {st[f]: k for f, k in lay.unique.items()}
    watched = sorted({*num, *eq, *unq})
    prelude = [f"local EK = {_lit(lay.entity)}", f"local IDS = {_lit(lay.ids)}"]
    prelude.append(f"local REG = {_lit(lay.registry)}")
    prelude.append(f"local TOMBS = {_lit(lay.tombs)}")
    if watched:
        prelude.append("local WATCHED = {" + ", ".join(_lit(f) for f in watched) + "}")
        prelude.append(_OLD_VALS)
    if unq:
        prelude.append(_CLAIM)
    head = "\n".join(prelude)
    add, delete, check = _add(num, eq, unq), _del(num, eq, unq), _check(unq)
    row_vals = _ROW_VALS if watched else ""
    insert = _INSERT.replace("$CHECK", (row_vals + "\n  " + check) if unq else "").replace(
        "$ADD", (row_vals + "\n  " + add) if watched else ""
    )
    if watched:
        touch = _TOUCH
        update = (
            _UPDATE.replace("$CHECK", check)
            .replace("$DEL", delete)
            .replace("$ADD", add)
            .replace("$TOUCH", touch)
        )
        old = "local vals = old_vals(key)\n    " + delete
    else:  # nothing indexed: no old values to read, no index to touch
        update = _UPDATE.replace("$CHECK", "").replace("$DEL", "").replace("$ADD", "")
        update = update.replace("$TOUCH", "")
        update = update.replace("      local vals = g.set\n", "")
        old = ""
    aux = "".join(", " + _lit(k) for k in (*num.values(), *unq.values()))
    return Scripts(
        insert=_script(head + insert),
        write=_script(head + _write(watched, num, eq, unq)),
        update=_script(head + update),
        delete=_script(head + _DELETE.replace("$OLD", old)),
        purge=_script(head + _PURGE),
        drop=_script(head + _DROP.replace("$AUX", aux)),
    )


def _write(watched: list[str], num: dict[str, str], eq: dict[str, str], unq: dict[str, str]) -> str:
    """The write script, specialised like the others: without indexes it neither reads
    nor maintains any, without unique fields it writes in the one pass that decides."""
    new_vals = (
        "local vals = {}\n    "
        "if np > 0 then for j = first, last, 2 do vals[ARGV[j]] = ARGV[j + 1] end end"
    )
    # The old values came with the guard's HMGET, after _rev and _del.
    olds = "; ".join(f"vals[{_lit(f)}] = held[{j}]" for j, f in enumerate(watched, 3))
    apply = _APPLY.replace(
        "$DEL",
        ("if not tomb then\n        local vals = {}\n        " + olds + "\n        "
         + _del(num, eq, unq) + "\n      end") if watched else "",
    ).replace("$ADD", _add(num, eq, unq) if watched else "")  # fmt: skip
    if unq:
        decided = (
            new_vals + "\n    " + _check(unq) + "\n    "
            "todo[#todo + 1] = {np, first, last, id, key, rev, exists, tomb, held, vals}"
        )
        pass2 = _PASS2.replace("$APPLY", apply)
    else:
        decided = (new_vals + "\n    " + apply) if watched else apply
        pass2 = ""
    fields = "".join(", " + _lit(f) for f in watched)
    return (
        _WRITE.replace("$TABLES", "\nlocal claims, todo = {}, {}" if unq else "")
        .replace("$FIELDS", fields)
        .replace("$DECIDED", decided)
        .replace("$PASS2", pass2)
    )
