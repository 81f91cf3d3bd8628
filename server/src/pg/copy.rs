//! `COPY (query) TO STDOUT` and `COPY table TO STDOUT`, in text or CSV, streamed: each batch
//! goes out as it is produced (so `psql \copy (SELECT ...) TO 'file'` works, and a COPY of
//! a continuous query streams until it is cancelled).
//!
//! Values are rendered exactly as in query results (the same `arrow-pg` text encoding),
//! then framed the way each format wants.

use bytes::{BufMut, BytesMut};
use engine::EngineError;
use engine::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Statement,
};
use pgwire::messages::data::DataRow;

/// How a COPY renders rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopyFormat {
    pub(crate) csv: bool,
    pub(crate) delimiter: u8,
    pub(crate) null: String,
    pub(crate) header: bool,
    pub(crate) quote: u8,
}

/// A `COPY ... TO STDOUT`: the query to run and how to render it.
pub(crate) struct CopyOut {
    pub(crate) query: Statement,
    pub(crate) format: CopyFormat,
}

fn unsupported(what: &str) -> EngineError {
    EngineError::Unsupported(format!(
        "{what}; Laminar supports COPY (<query>) TO STDOUT and COPY <table> TO STDOUT, in text or csv format"
    ))
}

/// Read a `COPY` statement; only `TO STDOUT` is supported.
pub(crate) fn copy_out(statement: &Statement) -> Result<Option<CopyOut>, EngineError> {
    let Statement::Copy {
        source,
        to,
        target,
        options,
        legacy_options,
        ..
    } = statement
    else {
        return Ok(None);
    };
    if !to {
        return Err(unsupported("COPY FROM is not supported"));
    }
    if *target != CopyTarget::Stdout {
        return Err(unsupported(
            "COPY TO a server file or program is not supported",
        ));
    }
    let query = match source {
        CopySource::Query(query) => Statement::Query(query.clone()),
        CopySource::Table {
            table_name,
            columns,
        } => {
            let list = if columns.is_empty() {
                "*".to_string()
            } else {
                columns
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let sql = format!("SELECT {list} FROM {table_name}");
            match engine::sql::parse_sql(&sql)?.pop() {
                Some(engine::sql::LaminarStatement::Sql(statement)) => *statement,
                _ => return Err(EngineError::Syntax(format!("cannot read {table_name}"))),
            }
        }
    };
    let mut format = CopyFormat {
        csv: false,
        delimiter: b'\t',
        null: "\\N".into(),
        header: false,
        quote: b'"',
    };
    let mut delimiter = None;
    let mut null = None;
    for option in options {
        match option {
            CopyOption::Format(name) => match name.value.to_ascii_lowercase().as_str() {
                "csv" => format.csv = true,
                "text" => format.csv = false,
                other => {
                    return Err(unsupported(&format!(
                        "COPY format '{other}' is not supported"
                    )));
                }
            },
            CopyOption::Header(h) => format.header = *h,
            CopyOption::Delimiter(c) => delimiter = Some(*c),
            CopyOption::Null(n) => null = Some(n.clone()),
            CopyOption::Quote(c) => format.quote = *c as u8,
            other => {
                return Err(unsupported(&format!(
                    "COPY option {other} is not supported"
                )));
            }
        }
    }
    for option in legacy_options {
        match option {
            CopyLegacyOption::Csv(csv) => {
                format.csv = true;
                for o in csv {
                    match o {
                        CopyLegacyCsvOption::Header => format.header = true,
                        CopyLegacyCsvOption::Quote(c) => format.quote = *c as u8,
                        other => {
                            return Err(unsupported(&format!(
                                "COPY option {other} is not supported"
                            )));
                        }
                    }
                }
            }
            CopyLegacyOption::Delimiter(c) => delimiter = Some(*c),
            CopyLegacyOption::Null(n) => null = Some(n.clone()),
            other => {
                return Err(unsupported(&format!(
                    "COPY option {other} is not supported"
                )));
            }
        }
    }
    if format.csv {
        format.delimiter = b',';
        format.null = String::new();
    }
    if let Some(d) = delimiter {
        if !d.is_ascii() {
            return Err(EngineError::InvalidParameter(format!(
                "COPY delimiter must be a single one-byte character, got '{d}'"
            )));
        }
        format.delimiter = d as u8;
    }
    if let Some(n) = null {
        format.null = n;
    }
    Ok(Some(CopyOut { query, format }))
}

/// The fields of an encoded row: `None` for NULL.
fn fields(row: &DataRow) -> Vec<Option<&[u8]>> {
    let mut out = Vec::with_capacity(row.field_count.max(0) as usize);
    let mut data = &row.data[..];
    for _ in 0..row.field_count {
        if data.len() < 4 {
            break;
        }
        let len = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        data = &data[4..];
        if len < 0 {
            out.push(None);
        } else {
            let len = (len as usize).min(data.len());
            out.push(Some(&data[..len]));
            data = &data[len..];
        }
    }
    out
}

impl CopyFormat {
    fn put_value(&self, out: &mut BytesMut, value: &[u8]) {
        if self.csv {
            let needs_quotes = value.is_empty()
                || value.iter().any(|b| {
                    *b == self.delimiter || *b == self.quote || *b == b'\n' || *b == b'\r'
                })
                || value == self.null.as_bytes();
            if needs_quotes {
                out.put_u8(self.quote);
                for b in value {
                    if *b == self.quote {
                        out.put_u8(self.quote);
                    }
                    out.put_u8(*b);
                }
                out.put_u8(self.quote);
            } else {
                out.put_slice(value);
            }
        } else {
            for b in value {
                match *b {
                    b'\\' => out.put_slice(b"\\\\"),
                    b'\n' => out.put_slice(b"\\n"),
                    b'\r' => out.put_slice(b"\\r"),
                    b'\t' if self.delimiter == b'\t' => out.put_slice(b"\\t"),
                    d if d == self.delimiter => {
                        out.put_u8(b'\\');
                        out.put_u8(d);
                    }
                    other => out.put_u8(other),
                }
            }
        }
    }

    /// One line for an encoded row.
    pub(crate) fn line(&self, row: &DataRow, out: &mut BytesMut) {
        for (i, value) in fields(row).into_iter().enumerate() {
            if i > 0 {
                out.put_u8(self.delimiter);
            }
            match value {
                Some(v) => self.put_value(out, v),
                None => out.put_slice(self.null.as_bytes()),
            }
        }
        out.put_u8(b'\n');
    }

    /// The header line (CSV with HEADER).
    pub(crate) fn header_line(&self, names: &[&str], out: &mut BytesMut) {
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                out.put_u8(self.delimiter);
            }
            self.put_value(out, name.as_bytes());
        }
        out.put_u8(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[Option<&str>]) -> DataRow {
        let mut data = BytesMut::new();
        for v in values {
            match v {
                Some(v) => {
                    data.put_i32(v.len() as i32);
                    data.put_slice(v.as_bytes());
                }
                None => data.put_i32(-1),
            }
        }
        DataRow::new(data, values.len() as i16)
    }

    #[test]
    fn text_and_csv_lines() {
        let text = CopyFormat {
            csv: false,
            delimiter: b'\t',
            null: "\\N".into(),
            header: false,
            quote: b'"',
        };
        let mut out = BytesMut::new();
        text.line(&row(&[Some("a\tb"), None, Some("back\\slash")]), &mut out);
        assert_eq!(&out[..], b"a\\tb\t\\N\tback\\\\slash\n");
        let csv = CopyFormat {
            csv: true,
            delimiter: b',',
            null: String::new(),
            header: true,
            quote: b'"',
        };
        let mut out = BytesMut::new();
        csv.line(
            &row(&[Some("x,y"), None, Some("say \"hi\""), Some("")]),
            &mut out,
        );
        assert_eq!(&out[..], b"\"x,y\",,\"say \"\"hi\"\"\",\"\"\n");
    }
}
