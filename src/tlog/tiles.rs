//! C2SP tlog-tiles: the log's hashes and entries as static files any HTTP cache can serve.
//!
//! Tiles are 256 wide (height 8). A hash tile `tile/<L>/<N>` holds the hashes of level
//! `8·L` of the tree from the `N`-th group of 256 on, each 32 bytes; an entry bundle
//! `tile/entries/<N>` holds leaves `256·N…`, each as a 2-byte big-endian length and its bytes.
//! A partial tile, at the tree's right edge, has `.p/<W>` with its width `W` (1…255). `N` is
//! written in groups of three digits, each but the last prefixed with `x`: 1234067 is
//! `x001/x234/067`.

use super::tree::{Error, HashReader};

/// Tile height: 2⁸ = 256 hashes or entries per tile.
pub const HEIGHT: u8 = 8;

/// Hashes or entries per full tile.
pub const WIDTH: u64 = 1 << HEIGHT;

/// Which tile a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TilePath {
    /// Hashes of tree level `8·level`, group `index`, `width` of them (256 when full).
    Hashes { level: u8, index: u64, width: u16 },
    /// Leaves `256·index…`, `width` of them.
    Entries { index: u64, width: u16 },
}

/// Why a path names no tile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a tile path: {0}")]
pub struct BadTilePath(pub String);

impl TilePath {
    /// Parses a path after `tile/`, e.g. `0/x001/x234/067.p/42` or `entries/005`.
    pub fn parse(path: &str) -> Result<Self, BadTilePath> {
        let bad = || BadTilePath(path.to_owned());
        let (kind, rest) = path.split_once('/').ok_or_else(bad)?;
        let (index, width) = match rest.split_once(".p/") {
            Some((index, width)) => {
                // The width of a partial tile: 1…255, without leading zeros.
                let w: u16 = width.parse().map_err(|_| bad())?;
                if w == 0 || u64::from(w) >= WIDTH || width.starts_with('0') {
                    return Err(bad());
                }
                (index, w)
            }
            None => (rest, WIDTH as u16),
        };
        let index = parse_index(index).ok_or_else(bad)?;
        if kind == "entries" {
            return Ok(TilePath::Entries { index, width });
        }
        // A level is a number without leading zeros, small enough for a 64-bit tree.
        let level: u8 = kind.parse().map_err(|_| bad())?;
        if level > 7 || (kind.len() > 1 && kind.starts_with('0')) {
            return Err(bad());
        }
        Ok(TilePath::Hashes {
            level,
            index,
            width,
        })
    }

    /// The path after `tile/`.
    pub fn to_path(self) -> String {
        let (head, index, width) = match self {
            TilePath::Hashes {
                level,
                index,
                width,
            } => (level.to_string(), index, width),
            TilePath::Entries { index, width } => ("entries".to_owned(), index, width),
        };
        let partial = if u64::from(width) == WIDTH {
            String::new()
        } else {
            format!(".p/{width}")
        };
        format!("{head}/{}{partial}", format_index(index))
    }

    /// Whether the tile is full, and so never changes.
    pub fn is_full(self) -> bool {
        let width = match self {
            TilePath::Hashes { width, .. } | TilePath::Entries { width, .. } => width,
        };
        u64::from(width) == WIDTH
    }
}

/// `x001/x234/067` → 1234067.
fn parse_index(text: &str) -> Option<u64> {
    let groups: Vec<&str> = text.split('/').collect();
    let (last, rest) = groups.split_last()?;
    let mut n: u64 = 0;
    for (i, group) in rest.iter().chain(std::iter::once(last)).enumerate() {
        let digits = if i < rest.len() {
            group.strip_prefix('x')?
        } else {
            group
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n = n
            .checked_mul(1000)?
            .checked_add(digits.parse::<u64>().ok()?)?;
    }
    // One spelling per number: no leading `x000/` group.
    if rest.first().is_some_and(|g| *g == "x000") {
        return None;
    }
    Some(n)
}

/// 1234067 → `x001/x234/067`.
fn format_index(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    while n >= 1000 {
        n /= 1000;
        groups.push(format!("x{:03}", n % 1000));
    }
    groups.reverse();
    groups.join("/")
}

/// The bytes of a hash tile of a tree whose stored hashes `stored` reads. The tile must lie
/// within the tree (the caller checks it against the tree's size).
pub fn hash_tile<R: HashReader>(
    level: u8,
    index: u64,
    width: u16,
    stored: &R,
) -> Result<Vec<u8>, Error> {
    tlog_tiles::tile::Tile::new(HEIGHT, level, index, u32::from(width), false).read_data(stored)
}

/// The longest leaf an entry bundle can hold: its length is two bytes.
pub const MAX_LEAF_BYTES: usize = u16::MAX as usize;

/// An entry bundle: each leaf as a 2-byte big-endian length and its bytes.
pub fn entry_bundle<'a>(leaves: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for leaf in leaves {
        let len = u16::try_from(leaf.len())
            .map_err(|_| Error::InvalidInput("a leaf longer than 65,535 bytes".into()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(leaf);
    }
    Ok(out)
}

/// The leaves of an entry bundle; refuses a bundle cut short.
pub fn parse_entry_bundle(bundle: &[u8]) -> Result<Vec<&[u8]>, Error> {
    let mut leaves = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let [hi, lo, tail @ ..] = rest else {
            return Err(Error::InvalidTile);
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if tail.len() < len {
            return Err(Error::InvalidTile);
        }
        let (leaf, tail) = tail.split_at(len);
        leaves.push(leaf);
        rest = tail;
    }
    Ok(leaves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::tree::{MemoryTree, leaf_hash};

    #[test]
    fn paths_follow_the_c2sp_spelling_both_ways() {
        let cases = [
            (
                "0/x001/x234/067",
                TilePath::Hashes {
                    level: 0,
                    index: 1_234_067,
                    width: 256,
                },
            ),
            (
                "2/000.p/42",
                TilePath::Hashes {
                    level: 2,
                    index: 0,
                    width: 42,
                },
            ),
            (
                "entries/x005/000",
                TilePath::Entries {
                    index: 5_000,
                    width: 256,
                },
            ),
            (
                "entries/999.p/1",
                TilePath::Entries {
                    index: 999,
                    width: 1,
                },
            ),
        ];
        for (path, tile) in cases {
            assert_eq!(TilePath::parse(path), Ok(tile), "{path}");
            assert_eq!(tile.to_path(), path);
        }
        assert!(cases[0].1.is_full() && !cases[1].1.is_full());
        for bad in [
            "0/1",
            "0/0001",
            "0/x000/001",
            "0/001/x002",
            "0/001.p/0",
            "0/001.p/256",
            "0/001.p/042",
            "00/001",
            "8/001",
            "data/001",
            "entries",
            "0/-01",
            "0/x999/x999/x999/x999/x999/x999/x999/999",
        ] {
            assert!(TilePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_level_zero_tile_holds_the_leaf_hashes_in_order() {
        let mut tree = MemoryTree::new();
        let leaves: Vec<Vec<u8>> = (0..300).map(|i| format!("leaf {i}").into_bytes()).collect();
        for leaf in &leaves {
            tree.append(leaf);
        }
        let full = hash_tile(0, 0, 256, &tree).unwrap();
        assert_eq!(full.len(), 256 * 32);
        for (i, leaf) in leaves.iter().take(256).enumerate() {
            assert_eq!(&full[i * 32..(i + 1) * 32], leaf_hash(leaf).0);
        }
        let partial = hash_tile(0, 1, 44, &tree).unwrap();
        assert_eq!(&partial[..32], leaf_hash(&leaves[256]).0);
        // The level-1 tile's first hash is the root of the first 256 leaves.
        let level1 = hash_tile(1, 0, 1, &tree).unwrap();
        assert_eq!(level1, tree.root_at(256).0);
    }

    #[test]
    fn entry_bundles_round_trip_and_refuse_a_cut() {
        let leaves: Vec<&[u8]> = vec![b"", b"a", &[0xff; 300]];
        let bundle = entry_bundle(leaves.iter().copied()).unwrap();
        assert_eq!(&bundle[..5], &[0, 0, 0, 1, b'a']);
        assert_eq!(parse_entry_bundle(&bundle).unwrap(), leaves);
        assert!(parse_entry_bundle(&bundle[..bundle.len() - 1]).is_err());
        assert!(parse_entry_bundle(&[0]).is_err());
        assert!(entry_bundle([&[0u8; 70_000][..]]).is_err());
    }
}
