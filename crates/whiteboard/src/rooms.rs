//! Room membership table: which socket is in which whiteboard or follow room.
//!
//! Pure bookkeeping (no IO), shared by every transport. It enforces the per-room and
//! per-socket limits and answers the questions the protocol events need
//! (who is in a room, did a follow room just empty).

use std::collections::HashMap;
use std::hash::Hash;

/// Prefix of the room a socket's followers join; the followed socket broadcasts its
/// viewport there without being a member.
pub const FOLLOW_PREFIX: &str = "follow@";

/// Limits the table enforces on joins.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// 0 = unlimited.
    pub max_users_per_room: usize,
    pub max_rooms_per_socket: usize,
}

/// Result of a join.
#[derive(Debug, PartialEq, Eq)]
pub enum Join<S> {
    /// Joined (or was already in); the members in join order, joiner included.
    Joined(Vec<S>),
    /// The room already has `max_users_per_room` members; nothing changed.
    Full,
    /// The socket is already in `max_rooms_per_socket` rooms; nothing changed.
    TooManyRooms,
}

/// A room the socket was in when it left, with what remains of it.
#[derive(Debug, PartialEq, Eq)]
pub struct Left<S> {
    pub room: String,
    pub remaining: Vec<S>,
}

#[derive(Debug)]
pub struct Rooms<S> {
    /// Members in join order, so `room-user-change` lists them as the reference servers do.
    rooms: HashMap<String, Vec<S>>,
    /// Rooms of each socket, to leave them all on disconnect without scanning every room.
    sockets: HashMap<S, Vec<String>>,
    memberships: usize,
    follow_rooms: usize,
}

impl<S: Clone + Eq + Hash> Default for Rooms<S> {
    fn default() -> Self {
        Rooms {
            rooms: HashMap::new(),
            sockets: HashMap::new(),
            memberships: 0,
            follow_rooms: 0,
        }
    }
}

impl<S: Clone + Eq + Hash> Rooms<S> {
    pub fn join(&mut self, room: &str, socket: &S, limits: Limits) -> Join<S> {
        let members = self.rooms.get(room);
        if let Some(members) = members {
            if members.contains(socket) {
                return Join::Joined(members.clone());
            }
            let is_follow = room.starts_with(FOLLOW_PREFIX);
            if !is_follow
                && limits.max_users_per_room != 0
                && members.len() >= limits.max_users_per_room
            {
                return Join::Full;
            }
        }
        let joined = self.sockets.get(socket).map_or(0, Vec::len);
        if joined >= limits.max_rooms_per_socket {
            return Join::TooManyRooms;
        }
        self.sockets
            .entry(socket.clone())
            .or_default()
            .push(room.to_owned());
        let members = self.rooms.entry(room.to_owned()).or_insert_with(|| {
            if room.starts_with(FOLLOW_PREFIX) {
                self.follow_rooms += 1;
            }
            Vec::new()
        });
        members.push(socket.clone());
        self.memberships += 1;
        Join::Joined(members.clone())
    }

    /// Leaves one room; returns the remaining members, or `None` if the socket was not in it.
    pub fn leave(&mut self, room: &str, socket: &S) -> Option<Vec<S>> {
        let rooms = self.sockets.get_mut(socket)?;
        let at = rooms.iter().position(|r| r == room)?;
        rooms.swap_remove(at);
        if rooms.is_empty() {
            self.sockets.remove(socket);
        }
        Some(self.remove_member(room, socket))
    }

    /// Leaves every room, in the order they were joined.
    pub fn leave_all(&mut self, socket: &S) -> Vec<Left<S>> {
        let Some(rooms) = self.sockets.remove(socket) else {
            return Vec::new();
        };
        rooms
            .into_iter()
            .map(|room| {
                let remaining = self.remove_member(&room, socket);
                Left { room, remaining }
            })
            .collect()
    }

    fn remove_member(&mut self, room: &str, socket: &S) -> Vec<S> {
        let Some(members) = self.rooms.get_mut(room) else {
            return Vec::new();
        };
        if let Some(at) = members.iter().position(|m| m == socket) {
            members.remove(at);
            self.memberships -= 1;
        }
        if members.is_empty() {
            self.rooms.remove(room);
            if room.starts_with(FOLLOW_PREFIX) {
                self.follow_rooms -= 1;
            }
            return Vec::new();
        }
        members.clone()
    }

    pub fn members(&self, room: &str) -> &[S] {
        self.rooms.get(room).map_or(&[], Vec::as_slice)
    }

    /// (whiteboard rooms, follow rooms, socket-in-room pairs), for the gauges.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.rooms.len() - self.follow_rooms,
            self.follow_rooms,
            self.memberships,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_users_per_room: 2,
        max_rooms_per_socket: 2,
    };

    #[test]
    fn join_lists_members_in_order_and_enforces_room_limit() {
        let mut rooms = Rooms::default();
        assert_eq!(rooms.join("r", &1, LIMITS), Join::Joined(vec![1]));
        assert_eq!(rooms.join("r", &2, LIMITS), Join::Joined(vec![1, 2]));
        assert_eq!(rooms.join("r", &3, LIMITS), Join::Full);
        assert_eq!(
            rooms.join("r", &2, LIMITS),
            Join::Joined(vec![1, 2]),
            "rejoin is idempotent"
        );
        assert_eq!(rooms.counts(), (1, 0, 2));
    }

    #[test]
    fn follow_rooms_have_no_user_limit_but_count_toward_socket_limit() {
        let mut rooms = Rooms::default();
        for s in 0..5 {
            assert!(matches!(
                rooms.join("follow@x", &s, LIMITS),
                Join::Joined(_)
            ));
        }
        assert!(matches!(rooms.join("a", &0, LIMITS), Join::Joined(_)));
        assert_eq!(rooms.join("b", &0, LIMITS), Join::TooManyRooms);
        assert_eq!(rooms.counts(), (1, 1, 6));
    }

    #[test]
    fn leave_all_reports_remaining_and_leaves_nothing_behind() {
        let mut rooms = Rooms::default();
        let unlimited = Limits {
            max_users_per_room: 0,
            max_rooms_per_socket: 8,
        };
        rooms.join("r", &1, unlimited);
        rooms.join("r", &2, unlimited);
        rooms.join("follow@2", &1, unlimited);
        let left = rooms.leave_all(&1);
        assert_eq!(
            left,
            vec![
                Left {
                    room: "r".into(),
                    remaining: vec![2]
                },
                Left {
                    room: "follow@2".into(),
                    remaining: vec![]
                },
            ]
        );
        assert_eq!(rooms.counts(), (1, 0, 1));
        assert_eq!(rooms.leave("r", &2), Some(vec![]));
        assert_eq!(rooms.leave("r", &2), None);
        assert_eq!(rooms.counts(), (0, 0, 0));
        assert!(rooms.sockets.is_empty() && rooms.rooms.is_empty());
    }
}
