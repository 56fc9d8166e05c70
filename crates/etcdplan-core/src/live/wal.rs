//! Which member a data dir belongs to, read from the head of its first WAL
//! file: etcd writes a CRC record, then a metadata record holding the
//! member's and the cluster's IDs (`etcdserverpb.Metadata`), before anything
//! else. The probe sends the first bytes of that file; this reads them.
//!
//! Framing (etcd's `wal/encoder.go`): each record is preceded by a little-endian
//! u64 whose low 56 bits are the record's length and whose top bit marks
//! padding (its count in bits 56..59). A record is `walpb.Record`: field 1
//! `type` (varint; 1 = metadata, 4 = CRC), field 2 `crc`, field 3 `data`.

use crate::model::{ClusterId, MemberId};

/// The member and cluster a WAL belongs to, from its first bytes; None when
/// they are not a WAL etcdplan can read.
#[must_use]
pub fn wal_owner(head: &[u8]) -> Option<(MemberId, ClusterId)> {
    let mut at = 0usize;
    // The metadata record is the first or second record of the first file.
    for _ in 0..2 {
        let frame = u64::from_le_bytes(head.get(at..at + 8)?.try_into().ok()?);
        let len = usize::try_from(frame & 0x00ff_ffff_ffff_ffff).ok()?;
        let pad = if frame & (1 << 63) != 0 {
            usize::try_from((frame >> 56) & 0x7).ok()?
        } else {
            0
        };
        let record = head.get(at + 8..at + 8 + len)?;
        at += 8 + len + pad;
        let (kind, data) = record_fields(record)?;
        if kind == 1 {
            let (node, cluster) = metadata(data?)?;
            return Some((MemberId(node), ClusterId(cluster)));
        }
    }
    None
}

/// `walpb.Record`'s type and data.
fn record_fields(mut b: &[u8]) -> Option<(u64, Option<&[u8]>)> {
    let (mut kind, mut data) = (None, None);
    while !b.is_empty() {
        let (key, rest) = varint(b)?;
        b = rest;
        match (key >> 3, key & 7) {
            (field, 0) => {
                let (v, rest) = varint(b)?;
                b = rest;
                if field == 1 {
                    kind = Some(v);
                }
            }
            (field, 2) => {
                let (len, rest) = varint(b)?;
                let len = usize::try_from(len).ok()?;
                let bytes = rest.get(..len)?;
                b = &rest[len..];
                if field == 3 {
                    data = Some(bytes);
                }
            }
            _ => return None,
        }
    }
    Some((kind?, data))
}

/// `etcdserverpb.Metadata`: NodeID (1), ClusterID (2).
fn metadata(mut b: &[u8]) -> Option<(u64, u64)> {
    let (mut node, mut cluster) = (None, None);
    while !b.is_empty() {
        let (key, rest) = varint(b)?;
        if key & 7 != 0 {
            return None;
        }
        let (v, rest) = varint(rest)?;
        b = rest;
        match key >> 3 {
            1 => node = Some(v),
            2 => cluster = Some(v),
            _ => {}
        }
    }
    Some((node?, cluster?))
}

fn varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, &b[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn frame(out: &mut Vec<u8>, record: &[u8]) {
        let pad = (8 - record.len() % 8) % 8;
        let mut len = record.len() as u64;
        if pad > 0 {
            len |= (0x80 | pad as u64) << 56;
        }
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(record);
        out.extend(std::iter::repeat_n(0, pad));
    }

    #[test]
    fn reads_a_wal_real_etcd_wrote() {
        // The first KiB of the WAL of a one-member cluster etcd 3.4.23 made;
        // etcdctl member list said member bdae9bbc11dd390d, cluster d1cfaf999eb97a2a.
        let head = include_bytes!("testdata/etcd-3.4.23-wal.head");
        assert_eq!(
            wal_owner(head),
            Some((
                MemberId(0xbdae_9bbc_11dd_390d),
                ClusterId(0xd1cf_af99_9eb9_7a2a)
            ))
        );
    }

    #[test]
    fn reads_the_ids_after_the_crc_record() {
        let mut crc = Vec::new();
        put_varint(&mut crc, 1 << 3);
        put_varint(&mut crc, 4);
        let mut meta = Vec::new();
        put_varint(&mut meta, 1 << 3);
        put_varint(&mut meta, 0x8e9e_05c5_2164_694d);
        put_varint(&mut meta, 2 << 3);
        put_varint(&mut meta, 0xcdf8_1819_4e3a_8c32);
        let mut rec = Vec::new();
        put_varint(&mut rec, 1 << 3);
        put_varint(&mut rec, 1);
        put_varint(&mut rec, 2 << 3);
        put_varint(&mut rec, 12345);
        put_varint(&mut rec, (3 << 3) | 2);
        put_varint(&mut rec, meta.len() as u64);
        rec.extend_from_slice(&meta);
        let mut wal = Vec::new();
        frame(&mut wal, &crc);
        frame(&mut wal, &rec);
        let (m, c) = wal_owner(&wal).unwrap_or_else(|| panic!("not read"));
        assert_eq!(m, MemberId(0x8e9e_05c5_2164_694d));
        assert_eq!(c, ClusterId(0xcdf8_1819_4e3a_8c32));
        assert_eq!(wal_owner(&wal[..20]), None);
    }
}
