//! The Nexmark event model, after the standard (Beam / Flink) generator.
//!
//! Event ids are dealt out in epochs of 50: the first id of an epoch is a new person, the
//! next three are new auctions and the other 46 are bids. Person and auction ids therefore
//! follow from the event id alone, so any event can be produced on its own from
//! `(seed, event id)` — which is what lets partitions generate disjoint slices of one
//! stream. Sellers and bidders are drawn from the most recent people, bids from the auctions
//! still in flight, and a share of each goes to a slowly moving "hot" id to create skew.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Array, Int64Array, StringBuilder, StructArray, TimestampNanosecondArray,
};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::datatypes::{Fields, SchemaRef};
use arrow::record_batch::RecordBatch;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::error::Result;

// Out of every 50 consecutive event ids: 1 person, 3 auctions, 46 bids.
const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const BID_PROPORTION: u64 = 46;
const TOTAL_PROPORTION: u64 = PERSON_PROPORTION + AUCTION_PROPORTION + BID_PROPORTION;

/// `event_type` values.
const PERSON: i32 = 0;
const AUCTION: i32 = 1;
const BID: i32 = 2;

const FIRST_PERSON_ID: i64 = 1000;
const FIRST_AUCTION_ID: i64 = 1000;
const FIRST_CATEGORY_ID: i64 = 10;
const NUM_CATEGORIES: i64 = 5;

/// Sellers and non-hot bidders are drawn from this many most recent people.
const NUM_ACTIVE_PEOPLE: u64 = 1000;
/// Non-hot bids go to one of this many most recent auctions.
const NUM_IN_FLIGHT_AUCTIONS: u64 = 100;
/// Draws may run this far past the newest id, so a few events name a person or auction
/// that only appears shortly after (as in the standard generator).
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;

// A draw in 0..ratio that is not 0 picks the hot id: hot with probability 1 - 1/ratio.
const HOT_AUCTION_RATIO: u32 = 2;
const HOT_BIDDER_RATIO: u32 = 4;
const HOT_SELLER_RATIO: u32 = 4;
const HOT_CHANNEL_RATIO: u32 = 2;
/// A hot id is the newest id rounded down to a multiple of this, so it moves on slowly.
const HOT_ID_STRIDE: u64 = 100;

const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
/// Non-hot bids come from `channel-0` .. `channel-9999`.
const NUM_CHANNELS: u64 = 10_000;

// Average event sizes in bytes the `extra` column pads up to.
const AVG_PERSON_BYTES: usize = 200;
const AVG_AUCTION_BYTES: usize = 500;
const AVG_BID_BYTES: usize = 100;

const FIRST_NAMES: [&str; 12] = [
    "alice", "bruno", "carla", "dmitri", "elena", "farid", "greta", "hugo", "ingrid", "jonas",
    "keiko", "luis",
];
const LAST_NAMES: [&str; 10] = [
    "meyer", "novak", "okafor", "petrov", "quinn", "rossi", "santos", "tanaka", "ueda", "varga",
];
const CITIES: [&str; 10] = [
    "phoenix",
    "tucson",
    "fresno",
    "sacramento",
    "boise",
    "pocatello",
    "salem",
    "eugene",
    "spokane",
    "tacoma",
];
/// Six states, half of them the `OR`, `ID`, `CA` that Nexmark query 3 selects.
const STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];

const LETTERS: &[u8; 26] = b"abcdefghijklmnopqrstuvwxyz";
const LETTERS_AND_SPACE: &[u8; 27] = b"abcdefghijklmnopqrstuvwxyz ";
/// Characters taken from one 64-bit draw: 27^12 is far below 2^64, so each stays
/// close to uniform.
const CHARS_PER_DRAW: usize = 12;

/// Odd 64-bit constant (2^64 / golden ratio) that spreads consecutive ids apart.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
/// Keeps the url streams apart from the event streams.
const URL_SALT: u64 = 0x5155_5256_4e58_4d4b;

/// The kind of event `id` is.
fn event_type(id: u64) -> i32 {
    let offset = id % TOTAL_PROPORTION;
    if offset < PERSON_PROPORTION {
        PERSON
    } else if offset < PERSON_PROPORTION + AUCTION_PROPORTION {
        AUCTION
    } else {
        BID
    }
}

/// 0-based id of the newest person as of event `id` (its own id if it is a person).
fn last_base0_person_id(id: u64) -> u64 {
    // Each epoch opens with its single person event, so the newest person is that one.
    (id / TOTAL_PROPORTION) * PERSON_PROPORTION
}

/// 0-based id of the newest auction as of event `id` (its own id if it is an auction).
fn last_base0_auction_id(id: u64) -> u64 {
    let epoch = id / TOTAL_PROPORTION;
    let offset = id % TOTAL_PROPORTION;
    if offset < PERSON_PROPORTION {
        // A person event: the newest auction is the previous epoch's last one.
        (epoch * AUCTION_PROPORTION).saturating_sub(1)
    } else {
        epoch * AUCTION_PROPORTION + (offset - PERSON_PROPORTION).min(AUCTION_PROPORTION - 1)
    }
}

/// A recent person: one of the newest `NUM_ACTIVE_PEOPLE`, or just beyond them.
fn next_base0_person_id(id: u64, rng: &mut SmallRng) -> u64 {
    let people = last_base0_person_id(id) + 1;
    let active = people.min(NUM_ACTIVE_PEOPLE);
    people - active + rng.random_range(0..active + PERSON_ID_LEAD)
}

/// An in-flight auction: one of the newest `NUM_IN_FLIGHT_AUCTIONS`, or just beyond them.
fn next_base0_auction_id(id: u64, rng: &mut SmallRng) -> u64 {
    let newest = last_base0_auction_id(id);
    let oldest = newest.saturating_sub(NUM_IN_FLIGHT_AUCTIONS);
    oldest + rng.random_range(0..newest - oldest + 1 + AUCTION_ID_LEAD)
}

/// A price in cents, log-uniform between $1 and $1,000,000.
fn next_price(rng: &mut SmallRng) -> i64 {
    (10f64.powf(rng.random::<f64>() * 6.0) * 100.0).round() as i64
}

fn pick(rng: &mut SmallRng, list: &[&'static str]) -> &'static str {
    list[rng.random_range(0..list.len())]
}

/// SplitMix64's finalizer: every input bit affects every output bit.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Seed of the fixed url of `channel`.
fn url_key(seed_key: u64, channel: u64) -> u64 {
    mix64(seed_key ^ URL_SALT ^ channel.wrapping_mul(GOLDEN_GAMMA))
}

/// Append `len` random characters of `alphabet`. The alphabet's size is a constant so the
/// divisions below compile to multiplications (this is the generator's hot loop).
fn push_chars<const N: usize>(rng: &mut SmallRng, s: &mut String, len: usize, alphabet: &[u8; N]) {
    let base = N as u64;
    let mut left = len;
    while left > 0 {
        let n = left.min(CHARS_PER_DRAW);
        let mut bits = rng.random::<u64>();
        for _ in 0..n {
            s.push(char::from(alphabet[(bits % base) as usize]));
            bits /= base;
        }
        left -= n;
    }
}

/// Append the filler that brings an event of `current` bytes to `target` bytes on
/// average, varying by ±20% so sizes are not all alike.
fn push_extra(rng: &mut SmallRng, s: &mut String, current: usize, target: usize) {
    if current >= target {
        return;
    }
    let want = target - current;
    let delta = (want + 2) / 5;
    let len = want - delta
        + if delta > 0 {
            rng.random_range(0..2 * delta)
        } else {
            0
        };
    push_chars(rng, s, len, LETTERS);
}

/// Append `value` in decimal.
fn push_u64(s: &mut String, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        s.push(char::from(d));
    }
}

/// Append the last `width` decimal digits of `value`, zero padded.
fn push_digits(s: &mut String, value: u64, width: u32) {
    for place in (0..width).rev() {
        s.push(char::from(b'0' + (value / 10u64.pow(place) % 10) as u8));
    }
}

/// Append `https://www.nexmark.com/<dir>/<dir>/<dir>/item.htm?query=1`, with directories
/// fixed by `key` (so a channel always has the same url, as in the standard generator).
fn push_base_url(s: &mut String, key: u64) {
    let mut rng = SmallRng::seed_from_u64(key);
    s.push_str("https://www.nexmark.com/");
    for _ in 0..3 {
        push_chars(&mut rng, s, 5, LETTERS);
        s.push('/');
    }
    s.push_str("item.htm?query=1");
}

/// Validity of one kind's struct column: set where the row is an event of that kind.
fn valid_where(types: &[i32], kind: i32) -> NullBuffer {
    NullBuffer::new(BooleanBuffer::collect_bool(types.len(), |i| {
        types[i] == kind
    }))
}

/// Produces batches of Nexmark events; event index `k` is the event with id
/// `first_event_id + k`, stamped `base_time + k / event_rate`.
pub(super) struct NexmarkGenerator {
    schema: SchemaRef,
    person_fields: Fields,
    auction_fields: Fields,
    bid_fields: Fields,
    /// The seed, scrambled so that nearby seeds give unrelated streams.
    seed_key: u64,
    first_event_id: u64,
    base_time_ns: i64,
    inter_event_ns: f64,
    /// Auctions stay open for up to twice this long.
    auction_horizon_ns: i64,
    /// Urls of the hot channels, fixed per seed.
    hot_urls: Vec<String>,
    /// Reused for every formatted string, so rows allocate nothing of their own.
    scratch: String,
}

impl NexmarkGenerator {
    /// `event_rate` must be positive and finite (checked by the table config).
    pub(super) fn new(seed: u64, first_event_id: u64, base_time_ms: u64, event_rate: f64) -> Self {
        let inter_event_ns = 1e9 / event_rate;
        // As in the standard generator: the time in which a window of in-flight auctions
        // is created, so bids (which target in-flight auctions) mostly arrive before expiry.
        let auction_events = NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION / AUCTION_PROPORTION;
        let seed_key = mix64(seed);
        let hot_urls = (0..HOT_CHANNELS.len() as u64)
            .map(|i| {
                let mut url = String::new();
                push_base_url(&mut url, url_key(seed_key, NUM_CHANNELS + i));
                url
            })
            .collect();
        NexmarkGenerator {
            schema: super::nexmark_schema(),
            person_fields: super::person_fields(),
            auction_fields: super::auction_fields(),
            bid_fields: super::bid_fields(),
            seed_key,
            first_event_id,
            base_time_ns: i64::try_from(base_time_ms)
                .unwrap_or(i64::MAX)
                .saturating_mul(1_000_000),
            inter_event_ns,
            // Float-to-int casts saturate, so absurdly low rates cannot overflow.
            auction_horizon_ns: (auction_events as f64 * inter_event_ns) as i64,
            hot_urls,
            scratch: String::with_capacity(512),
        }
    }

    fn event_time(&self, index: u64) -> i64 {
        self.base_time_ns
            .saturating_add((index as f64 * self.inter_event_ns) as i64)
    }

    /// The `rows` events with indices `first_index, first_index + step, ...`.
    pub(super) fn build_batch(
        &mut self,
        first_index: u64,
        step: u64,
        rows: usize,
    ) -> Result<RecordBatch> {
        let mut types = Vec::with_capacity(rows);
        let mut times = Vec::with_capacity(rows);
        // Every kind's columns get a row per event (a placeholder where its struct is
        // null); string buffers are sized for the kind's expected share.
        let mut persons = PersonColumns::new(rows, rows / 50 + 1);
        let mut auctions = AuctionColumns::new(rows, rows * 3 / 50 + 1);
        let mut bids = BidColumns::new(rows, rows);
        for i in 0..rows as u64 {
            let index = first_index + i * step;
            let id = self.first_event_id.wrapping_add(index);
            let time = self.event_time(index);
            // A fresh generator per event keeps its content a function of (seed, id) only.
            let mut rng = SmallRng::seed_from_u64(self.seed_key ^ id.wrapping_mul(GOLDEN_GAMMA));
            let kind = event_type(id);
            types.push(kind);
            times.push(time);
            match kind {
                PERSON => {
                    self.person(&mut persons, &mut rng, id, time);
                    auctions.push_placeholder();
                    bids.push_placeholder();
                }
                AUCTION => {
                    persons.push_placeholder();
                    self.auction(&mut auctions, &mut rng, id, time);
                    bids.push_placeholder();
                }
                _ => {
                    persons.push_placeholder();
                    auctions.push_placeholder();
                    self.bid(&mut bids, &mut rng, id, time);
                }
            }
        }
        let person_valid = valid_where(&types, PERSON);
        let auction_valid = valid_where(&types, AUCTION);
        let bid_valid = valid_where(&types, BID);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(types)),
            persons.finish(&self.person_fields, person_valid)?,
            auctions.finish(&self.auction_fields, auction_valid)?,
            bids.finish(&self.bid_fields, bid_valid)?,
            Arc::new(TimestampNanosecondArray::from(times)),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }

    fn person(&mut self, cols: &mut PersonColumns, rng: &mut SmallRng, id: u64, time: i64) {
        let s = &mut self.scratch;
        let first = pick(rng, &FIRST_NAMES);
        let last = pick(rng, &LAST_NAMES);
        cols.id
            .push(FIRST_PERSON_ID + last_base0_person_id(id) as i64);

        s.clear();
        s.push_str(first);
        s.push(' ');
        s.push_str(last);
        cols.name.append_value(s.as_str());
        // id and datetime take 8 bytes each.
        let mut size = 16 + s.len();

        s.clear();
        s.push_str(first);
        s.push('.');
        s.push_str(last);
        s.push('@');
        let domain_len = rng.random_range(3..=8);
        push_chars(rng, s, domain_len, LETTERS);
        s.push_str(".com");
        cols.email_address.append_value(s.as_str());
        size += s.len();

        s.clear();
        for group in 0..4 {
            if group > 0 {
                s.push(' ');
            }
            push_digits(s, rng.random_range(0..10_000), 4);
        }
        cols.credit_card.append_value(s.as_str());
        size += s.len();

        let city = pick(rng, &CITIES);
        let state = pick(rng, &STATES);
        cols.city.append_value(city);
        cols.state.append_value(state);
        size += city.len() + state.len();
        cols.datetime.push(time);

        s.clear();
        push_extra(rng, s, size, AVG_PERSON_BYTES);
        cols.extra.append_value(s.as_str());
    }

    fn auction(&mut self, cols: &mut AuctionColumns, rng: &mut SmallRng, id: u64, time: i64) {
        let s = &mut self.scratch;
        cols.id
            .push(FIRST_AUCTION_ID + last_base0_auction_id(id) as i64);

        s.clear();
        let len = rng.random_range(3..20);
        push_chars(rng, s, len, LETTERS_AND_SPACE);
        cols.item_name.append_value(s.as_str());
        // Seven numeric fields of 8 bytes each.
        let mut size = 56 + s.len();

        s.clear();
        let len = rng.random_range(3..100);
        push_chars(rng, s, len, LETTERS_AND_SPACE);
        cols.description.append_value(s.as_str());
        size += s.len();

        let initial_bid = next_price(rng);
        cols.initial_bid.push(initial_bid);
        cols.reserve.push(initial_bid + next_price(rng));
        cols.datetime.push(time);
        let open_for = 1 + rng.random_range(0..self.auction_horizon_ns.saturating_mul(2).max(1));
        cols.expires.push(time.saturating_add(open_for));
        let seller = if rng.random_range(0..HOT_SELLER_RATIO) > 0 {
            last_base0_person_id(id) / HOT_ID_STRIDE * HOT_ID_STRIDE
        } else {
            next_base0_person_id(id, rng)
        };
        cols.seller.push(FIRST_PERSON_ID + seller as i64);
        cols.category
            .push(FIRST_CATEGORY_ID + rng.random_range(0..NUM_CATEGORIES));

        s.clear();
        push_extra(rng, s, size, AVG_AUCTION_BYTES);
        cols.extra.append_value(s.as_str());
    }

    fn bid(&mut self, cols: &mut BidColumns, rng: &mut SmallRng, id: u64, time: i64) {
        let auction = if rng.random_range(0..HOT_AUCTION_RATIO) > 0 {
            last_base0_auction_id(id) / HOT_ID_STRIDE * HOT_ID_STRIDE
        } else {
            next_base0_auction_id(id, rng)
        };
        let bidder = if rng.random_range(0..HOT_BIDDER_RATIO) > 0 {
            last_base0_person_id(id) / HOT_ID_STRIDE * HOT_ID_STRIDE + 1
        } else {
            next_base0_person_id(id, rng)
        };
        cols.auction.push(FIRST_AUCTION_ID + auction as i64);
        cols.bidder.push(FIRST_PERSON_ID + bidder as i64);
        cols.price.push(next_price(rng));
        cols.datetime.push(time);

        let s = &mut self.scratch;
        if rng.random_range(0..HOT_CHANNEL_RATIO) > 0 {
            let i = rng.random_range(0..HOT_CHANNELS.len());
            cols.channel.append_value(HOT_CHANNELS[i]);
            cols.url.append_value(&self.hot_urls[i]);
        } else {
            let channel = rng.random_range(0..NUM_CHANNELS);
            s.clear();
            s.push_str("channel-");
            push_u64(s, channel);
            cols.channel.append_value(s.as_str());
            s.clear();
            push_base_url(s, url_key(self.seed_key, channel));
            s.push_str("&channel_id=");
            push_u64(s, channel);
            cols.url.append_value(s.as_str());
        }

        // Like the standard generator, only the four numeric fields count towards the size.
        s.clear();
        push_extra(rng, s, 32, AVG_BID_BYTES);
        cols.extra.append_value(s.as_str());
    }
}

fn int64(values: Vec<i64>) -> ArrayRef {
    Arc::new(Int64Array::from(values))
}

fn timestamps(values: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(values))
}

fn strings(mut builder: StringBuilder) -> ArrayRef {
    Arc::new(builder.finish())
}

fn struct_array(fields: &Fields, columns: Vec<ArrayRef>, valid: NullBuffer) -> Result<ArrayRef> {
    Ok(Arc::new(StructArray::try_new(
        fields.clone(),
        columns,
        Some(valid),
    )?))
}

/// Child columns of the `person` struct, in field order.
struct PersonColumns {
    id: Vec<i64>,
    name: StringBuilder,
    email_address: StringBuilder,
    credit_card: StringBuilder,
    city: StringBuilder,
    state: StringBuilder,
    datetime: Vec<i64>,
    extra: StringBuilder,
}

impl PersonColumns {
    fn new(rows: usize, expected: usize) -> Self {
        PersonColumns {
            id: Vec::with_capacity(rows),
            name: StringBuilder::with_capacity(rows, expected * 16),
            email_address: StringBuilder::with_capacity(rows, expected * 24),
            credit_card: StringBuilder::with_capacity(rows, expected * 19),
            city: StringBuilder::with_capacity(rows, expected * 10),
            state: StringBuilder::with_capacity(rows, expected * 2),
            datetime: Vec::with_capacity(rows),
            extra: StringBuilder::with_capacity(rows, expected * AVG_PERSON_BYTES),
        }
    }

    fn push_placeholder(&mut self) {
        self.id.push(0);
        self.name.append_value("");
        self.email_address.append_value("");
        self.credit_card.append_value("");
        self.city.append_value("");
        self.state.append_value("");
        self.datetime.push(0);
        self.extra.append_value("");
    }

    fn finish(self, fields: &Fields, valid: NullBuffer) -> Result<ArrayRef> {
        let columns = vec![
            int64(self.id),
            strings(self.name),
            strings(self.email_address),
            strings(self.credit_card),
            strings(self.city),
            strings(self.state),
            timestamps(self.datetime),
            strings(self.extra),
        ];
        struct_array(fields, columns, valid)
    }
}

/// Child columns of the `auction` struct, in field order.
struct AuctionColumns {
    id: Vec<i64>,
    item_name: StringBuilder,
    description: StringBuilder,
    initial_bid: Vec<i64>,
    reserve: Vec<i64>,
    datetime: Vec<i64>,
    expires: Vec<i64>,
    seller: Vec<i64>,
    category: Vec<i64>,
    extra: StringBuilder,
}

impl AuctionColumns {
    fn new(rows: usize, expected: usize) -> Self {
        AuctionColumns {
            id: Vec::with_capacity(rows),
            item_name: StringBuilder::with_capacity(rows, expected * 12),
            description: StringBuilder::with_capacity(rows, expected * 52),
            initial_bid: Vec::with_capacity(rows),
            reserve: Vec::with_capacity(rows),
            datetime: Vec::with_capacity(rows),
            expires: Vec::with_capacity(rows),
            seller: Vec::with_capacity(rows),
            category: Vec::with_capacity(rows),
            extra: StringBuilder::with_capacity(rows, expected * AVG_AUCTION_BYTES),
        }
    }

    fn push_placeholder(&mut self) {
        self.id.push(0);
        self.item_name.append_value("");
        self.description.append_value("");
        self.initial_bid.push(0);
        self.reserve.push(0);
        self.datetime.push(0);
        self.expires.push(0);
        self.seller.push(0);
        self.category.push(0);
        self.extra.append_value("");
    }

    fn finish(self, fields: &Fields, valid: NullBuffer) -> Result<ArrayRef> {
        let columns = vec![
            int64(self.id),
            strings(self.item_name),
            strings(self.description),
            int64(self.initial_bid),
            int64(self.reserve),
            timestamps(self.datetime),
            timestamps(self.expires),
            int64(self.seller),
            int64(self.category),
            strings(self.extra),
        ];
        struct_array(fields, columns, valid)
    }
}

/// Child columns of the `bid` struct, in field order.
struct BidColumns {
    auction: Vec<i64>,
    bidder: Vec<i64>,
    price: Vec<i64>,
    channel: StringBuilder,
    url: StringBuilder,
    datetime: Vec<i64>,
    extra: StringBuilder,
}

impl BidColumns {
    fn new(rows: usize, expected: usize) -> Self {
        BidColumns {
            auction: Vec::with_capacity(rows),
            bidder: Vec::with_capacity(rows),
            price: Vec::with_capacity(rows),
            channel: StringBuilder::with_capacity(rows, expected * 10),
            url: StringBuilder::with_capacity(rows, expected * 72),
            datetime: Vec::with_capacity(rows),
            extra: StringBuilder::with_capacity(rows, expected * AVG_BID_BYTES),
        }
    }

    fn push_placeholder(&mut self) {
        self.auction.push(0);
        self.bidder.push(0);
        self.price.push(0);
        self.channel.append_value("");
        self.url.append_value("");
        self.datetime.push(0);
        self.extra.append_value("");
    }

    fn finish(self, fields: &Fields, valid: NullBuffer) -> Result<ArrayRef> {
        let columns = vec![
            int64(self.auction),
            int64(self.bidder),
            int64(self.price),
            strings(self.channel),
            strings(self.url),
            timestamps(self.datetime),
            strings(self.extra),
        ];
        struct_array(fields, columns, valid)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int32Type, Int64Type, TimestampNanosecondType};
    use arrow::util::display::array_value_to_string;

    use super::*;

    const BASE_MS: u64 = 1_700_000_000_000;
    const RATE: f64 = 10_000.0;

    fn generator(seed: u64) -> NexmarkGenerator {
        NexmarkGenerator::new(seed, 0, BASE_MS, RATE)
    }

    fn int64_child(batch: &RecordBatch, column: usize, field: &str) -> Int64Array {
        batch
            .column(column)
            .as_struct()
            .column_by_name(field)
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone()
    }

    fn string_child(batch: &RecordBatch, column: usize, field: &str) -> arrow::array::StringArray {
        batch
            .column(column)
            .as_struct()
            .column_by_name(field)
            .unwrap()
            .as_string::<i32>()
            .clone()
    }

    fn rows_as_strings(batch: &RecordBatch) -> Vec<String> {
        (0..batch.num_rows())
            .map(|row| {
                batch
                    .columns()
                    .iter()
                    .map(|c| array_value_to_string(c, row).unwrap())
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    }

    #[test]
    fn schema_matches_declared_schema() {
        let batch = generator(0).build_batch(0, 1, 100).unwrap();
        assert_eq!(batch.schema(), super::super::nexmark_schema());
    }

    #[test]
    fn same_seed_gives_identical_batches() {
        let a = generator(7).build_batch(0, 1, 5_000).unwrap();
        let b = generator(7).build_batch(0, 1, 5_000).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn different_seeds_give_different_batches() {
        let a = generator(7).build_batch(0, 1, 5_000).unwrap();
        let b = generator(8).build_batch(0, 1, 5_000).unwrap();
        assert_ne!(a, b);
        // The kinds and ids are fixed by the event id; only the content differs.
        assert_eq!(a.column(0), b.column(0));
    }

    #[test]
    fn mix_is_one_person_three_auctions_per_fifty_events() {
        let batch = generator(1).build_batch(0, 1, 50_000).unwrap();
        let types = batch.column(0).as_primitive::<Int32Type>();
        let count = |kind: i32| types.values().iter().filter(|&&t| t == kind).count();
        assert_eq!(
            (count(PERSON), count(AUCTION), count(BID)),
            (1_000, 3_000, 46_000)
        );
        for (column, kind) in [(1, PERSON), (2, AUCTION), (3, BID)] {
            let structs = batch.column(column);
            assert_eq!(structs.null_count(), 50_000 - count(kind));
            assert!((0..50_000).all(|r| structs.is_valid(r) == (types.value(r) == kind)));
        }

        // New people and auctions get consecutive ids.
        let person_ids = int64_child(&batch, 1, "id");
        let persons: Vec<i64> = (0..50_000)
            .filter(|&r| types.value(r) == PERSON)
            .map(|r| person_ids.value(r))
            .collect();
        assert_eq!(persons, (1_000..2_000).collect::<Vec<_>>());
        let auction_ids = int64_child(&batch, 2, "id");
        let auctions: Vec<i64> = (0..50_000)
            .filter(|&r| types.value(r) == AUCTION)
            .map(|r| auction_ids.value(r))
            .collect();
        assert_eq!(auctions, (1_000..4_000).collect::<Vec<_>>());
    }

    #[test]
    fn bids_refer_to_existing_or_imminent_auctions_and_people() {
        let batch = generator(2).build_batch(0, 1, 50_000).unwrap();
        let types = batch.column(0).as_primitive::<Int32Type>();
        let auctions = int64_child(&batch, 3, "auction");
        let bidders = int64_child(&batch, 3, "bidder");
        let sellers = int64_child(&batch, 2, "seller");
        for row in 0..50_000 {
            let id = row as u64;
            let newest_person = FIRST_PERSON_ID + last_base0_person_id(id) as i64;
            match types.value(row) {
                BID => {
                    let newest = FIRST_AUCTION_ID + last_base0_auction_id(id) as i64;
                    let auction = auctions.value(row);
                    assert!(auction >= FIRST_AUCTION_ID, "row {row}: auction {auction}");
                    assert!(auction <= newest + AUCTION_ID_LEAD as i64, "row {row}");
                    assert!(auction >= newest - (NUM_IN_FLIGHT_AUCTIONS + HOT_ID_STRIDE) as i64);
                    let bidder = bidders.value(row);
                    assert!(bidder >= FIRST_PERSON_ID);
                    assert!(bidder <= newest_person + PERSON_ID_LEAD as i64, "row {row}");
                }
                AUCTION => {
                    let seller = sellers.value(row);
                    assert!(seller >= FIRST_PERSON_ID);
                    assert!(seller <= newest_person + PERSON_ID_LEAD as i64, "row {row}");
                }
                _ => {}
            }
        }
    }

    #[test]
    fn hot_auctions_get_far_more_bids_than_average() {
        let batch = generator(3).build_batch(0, 1, 50_000).unwrap();
        let types = batch.column(0).as_primitive::<Int32Type>();
        let auctions = int64_child(&batch, 3, "auction");
        let mut bids_per_auction: HashMap<i64, usize> = HashMap::new();
        for row in (0..50_000).filter(|&r| types.value(r) == BID) {
            *bids_per_auction.entry(auctions.value(row)).or_default() += 1;
        }
        let max = bids_per_auction.values().copied().max().unwrap();
        let average = 46_000 / bids_per_auction.len();
        assert!(max > 10 * average, "max {max}, average {average}");
    }

    #[test]
    fn partitions_together_produce_the_single_partition_stream() {
        let mut whole = rows_as_strings(&generator(4).build_batch(0, 1, 1_000).unwrap());
        let mut g = generator(4);
        let mut parts = rows_as_strings(&g.build_batch(0, 2, 500).unwrap());
        parts.extend(rows_as_strings(&g.build_batch(1, 2, 500).unwrap()));
        assert_ne!(whole, parts, "partitions interleave, so the order differs");
        whole.sort();
        parts.sort();
        assert_eq!(whole, parts);
    }

    #[test]
    fn event_time_advances_by_the_inter_event_delay() {
        let batch = generator(5).build_batch(0, 1, 200).unwrap();
        let types = batch.column(0).as_primitive::<Int32Type>();
        let step_ns = (1e9 / RATE) as i64;
        for (column, kind) in [(1, PERSON), (2, AUCTION), (3, BID)] {
            let times = batch
                .column(column)
                .as_struct()
                .column_by_name("datetime")
                .unwrap()
                .as_primitive::<TimestampNanosecondType>()
                .clone();
            for row in (0..200).filter(|&r| types.value(r) == kind) {
                let expected = BASE_MS as i64 * 1_000_000 + row as i64 * step_ns;
                assert_eq!(times.value(row), expected, "row {row}");
            }
        }
        let starts = batch
            .column(2)
            .as_struct()
            .column_by_name("datetime")
            .unwrap()
            .as_primitive::<TimestampNanosecondType>()
            .clone();
        let expires = batch
            .column(2)
            .as_struct()
            .column_by_name("expires")
            .unwrap()
            .as_primitive::<TimestampNanosecondType>()
            .clone();
        for row in (0..200).filter(|&r| types.value(r) == AUCTION) {
            assert!(expires.value(row) > starts.value(row));
        }
    }

    #[test]
    fn first_event_id_shifts_kinds_and_ids() {
        // Event 50 opens the second epoch: the person with id 1001.
        let batch = NexmarkGenerator::new(0, 50, BASE_MS, RATE)
            .build_batch(0, 1, 2)
            .unwrap();
        let types = batch.column(0).as_primitive::<Int32Type>();
        assert_eq!(types.values().to_vec(), vec![PERSON, AUCTION]);
        assert_eq!(int64_child(&batch, 1, "id").value(0), 1_001);
        assert_eq!(int64_child(&batch, 2, "id").value(1), 1_003);
    }

    #[test]
    fn strings_have_the_expected_shapes() {
        let batch = generator(6).build_batch(0, 1, 5_000).unwrap();
        let types = batch.column(0).as_primitive::<Int32Type>();
        let emails = string_child(&batch, 1, "emailaddress");
        let cards = string_child(&batch, 1, "creditcard");
        let states = string_child(&batch, 1, "state");
        let channels = string_child(&batch, 3, "channel");
        let urls = string_child(&batch, 3, "url");
        let extras = string_child(&batch, 3, "extra");
        let mut extra_bytes = 0;
        for row in 0..5_000 {
            match types.value(row) {
                PERSON => {
                    assert!(emails.value(row).contains('@'));
                    assert!(emails.value(row).ends_with(".com"));
                    let card = cards.value(row);
                    assert_eq!(card.len(), 19);
                    assert!(card.split(' ').all(|g| g.len() == 4));
                    assert!(STATES.contains(&states.value(row)));
                }
                BID => {
                    let (channel, url) = (channels.value(row), urls.value(row));
                    assert!(url.starts_with("https://www.nexmark.com/"));
                    assert_eq!(url.split('/').count(), 7, "{url}");
                    match channel.strip_prefix("channel-") {
                        Some(n) => assert!(url.ends_with(&format!("&channel_id={n}"))),
                        None => assert!(HOT_CHANNELS.contains(&channel)),
                    }
                    extra_bytes += extras.value(row).len();
                }
                _ => {}
            }
        }
        // Bid filler averages about 100 - 32 bytes.
        let bids = types.values().iter().filter(|&&t| t == BID).count();
        let average = extra_bytes / bids;
        assert!((60..=76).contains(&average), "average bid extra {average}");
    }

    #[test]
    fn same_channel_same_url() {
        let batch = generator(9).build_batch(0, 1, 20_000).unwrap();
        let channels = string_child(&batch, 3, "channel");
        let urls = string_child(&batch, 3, "url");
        let types = batch.column(0).as_primitive::<Int32Type>();
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for row in (0..20_000).filter(|&r| types.value(r) == BID) {
            let url = *seen.entry(channels.value(row)).or_insert(urls.value(row));
            assert_eq!(url, urls.value(row));
        }
    }
}
