//! Who is where across nodes, kept in Redis: nick claims, room
//! memberships and node liveness (docs/chat-cluster.md, "Nicks, /msg,
//! /who and /rooms"). Key names, owner values and the Lua scripts that
//! make each step atomic on the server. I/O free.
//!
//! - `tenk:nick:NICK` = `OWNER` (`INSTANCE/WORKER`), with a TTL the
//!   owning worker refreshes: a dead node's nicks expire.
//! - `tenk:alive:INSTANCE`, with the same TTL: the node is alive.
//! - `tenk:members:ROOM`, a set of `INSTANCE NICK`; `tenk:rooms`, the
//!   set of room names. Readers skip (and remove) members of instances
//!   that are not alive.
//! - `tenk:to:OWNER`, the channel of private messages for one worker.
//!
//! `INSTANCE` is `NODE/START_MICROS`: a node restarted under the same
//! `--node` does not inherit the memberships its previous run left.

/// The key of `nick`'s claim.
pub fn nick_key(nick: &str) -> Vec<u8> {
    format!("tenk:nick:{nick}").into_bytes()
}

/// The key saying `instance` is alive.
pub fn alive_key(instance: &str) -> Vec<u8> {
    format!("tenk:alive:{instance}").into_bytes()
}

/// The set of `room`'s members across nodes.
pub fn members_key(room: &str) -> Vec<u8> {
    format!("tenk:members:{room}").into_bytes()
}

/// The set of rooms with members somewhere.
pub const ROOMS_KEY: &[u8] = b"tenk:rooms";

/// A member entry of a room set.
pub fn member(instance: &str, nick: &str) -> Vec<u8> {
    format!("{instance} {nick}").into_bytes()
}

/// The channel of private messages for the worker `owner` names.
pub fn private_channel(owner: &str) -> Vec<u8> {
    format!("tenk:to:{owner}").into_bytes()
}

/// Claims a fresh guest nick: the first `guestN` free in Redis, N from a
/// counter every node shares, so guests of different nodes never collide.
/// ARGV: owner, TTL in ms. Returns the nick, or nil after 100 taken ones.
pub const GUEST: &[u8] = br"
for _ = 1, 100 do
  local nick = 'guest' .. redis.call('INCR', 'tenk:guests')
  if redis.call('SET', 'tenk:nick:' .. nick, ARGV[1], 'NX', 'PX', ARGV[2]) then
    return nick
  end
end
return false";

/// Keeps this worker's claims: KEYS are its nick keys; ARGV: owner, TTL
/// in ms. A claim still ours is extended, a missing one (expired during
/// an outage, or Redis restarted empty) is made again, and one another
/// owner holds is lost: the earlier claim in Redis wins. Returns the lost
/// keys.
pub const REFRESH: &[u8] = br"
local lost = {}
for _, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  elseif not owner then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  else
    table.insert(lost, key)
  end
end
return lost";

/// Frees claims that are still ours (compare-and-delete: a claim another
/// node made since, after ours expired, is left alone). KEYS: nick keys;
/// ARGV: owner. Returns how many were freed.
pub const RELEASE: &[u8] = br"
local freed = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    freed = freed + redis.call('DEL', key)
  end
end
return freed";

/// A private message: published to the channel of the worker that owns
/// the nick in `KEYS[1]`. ARGV: the payload. Returns the receivers (0: no
/// such nick, or its worker is not listening).
pub const MSG: &[u8] = br"
local owner = redis.call('GET', KEYS[1])
if not owner then return 0 end
return redis.call('PUBLISH', 'tenk:to:' .. owner, ARGV[1])";

/// Live members of one room set; members of dead instances are removed.
const LIVE: &str = r"
local alive = {}
local function live(set)
  local out = {}
  for _, entry in ipairs(redis.call('SMEMBERS', set)) do
    local space = string.find(entry, ' ', 1, true)
    if space then
      local instance = string.sub(entry, 1, space - 1)
      local up = alive[instance]
      if up == nil then
        up = redis.call('EXISTS', 'tenk:alive:' .. instance) == 1
        alive[instance] = up
      end
      if up then
        table.insert(out, string.sub(entry, space + 1))
      else
        redis.call('SREM', set, entry)
      end
    end
  end
  return out
end
";

/// `/who`: the live nicks in `KEYS[1]` (a members set).
pub fn who_script() -> Vec<u8> {
    format!("{LIVE}\nreturn live(KEYS[1])").into_bytes()
}

/// `/rooms`: name and live member count of each room, flat; rooms with
/// none are forgotten, except `ARGV[1]` (the default room).
pub fn rooms_script() -> Vec<u8> {
    format!(
        "{LIVE}
local out = {{}}
for _, room in ipairs(redis.call('SMEMBERS', 'tenk:rooms')) do
  local n = #live('tenk:members:' .. room)
  if n == 0 and room ~= ARGV[1] then
    redis.call('SREM', 'tenk:rooms', room)
  else
    table.insert(out, room)
    table.insert(out, tostring(n))
  end
end
return out"
    )
    .into_bytes()
}

/// The nick of a nick key.
pub fn nick_of(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key).ok()?.strip_prefix("tenk:nick:")
}

/// Parses the `/rooms` script's flat answer, adding `default` if missing
/// and sorting by name.
pub fn parse_rooms(flat: &[&[u8]], default: &str) -> Vec<(String, usize)> {
    let mut rooms: Vec<(String, usize)> = flat
        .chunks_exact(2)
        .filter_map(|pair| {
            let name = std::str::from_utf8(pair[0]).ok()?;
            let n = std::str::from_utf8(pair[1]).ok()?.parse().ok()?;
            Some((name.to_string(), n))
        })
        .collect();
    if !rooms.iter().any(|(name, _)| name == default) {
        rooms.push((default.to_string(), 0));
    }
    rooms.sort();
    rooms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_answer_keeps_the_default_room_and_sorts() {
        let flat: Vec<&[u8]> = vec![b"rust", b"2", b"go", b"1", b"bad", b"x"];
        assert_eq!(
            parse_rooms(&flat, "lobby"),
            vec![
                ("go".to_string(), 1),
                ("lobby".to_string(), 0),
                ("rust".to_string(), 2)
            ]
        );
    }

    #[test]
    fn keys() {
        assert_eq!(nick_of(&nick_key("bob")), Some("bob"));
        assert_eq!(nick_of(b"other"), None);
        assert_eq!(member("A/1", "bob"), b"A/1 bob");
        assert_eq!(private_channel("A/1/0"), b"tenk:to:A/1/0");
    }
}
