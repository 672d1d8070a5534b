//! QR codes as images: an entry pass (its JWT) or a UPI payment intent link (`upi://pay?...`),
//! shown on a kiosk screen or in the app and read by a phone camera or a gate scanner.
//!
//! Every code uses error correction level M (about 15 % of the modules can be lost), a quiet
//! zone of 4 modules on each side, and 8 pixels per module. The encoder picks the smallest QR
//! version that holds the text; text beyond [`MAX_TEXT_BYTES`] is refused. PNGs are 1-bit
//! greyscale (a pass is about 3 KB); SVGs draw one rectangle per horizontal run of dark modules.
//! Output is deterministic: the same text gives the same bytes.

use std::fmt::Write as _;

use qrcode::types::QrError as EncodeError;
use qrcode::{Color, EcLevel, QrCode};

/// Pixels per module side (the PNG's; the SVG's `width` and `height` use the same).
pub const MODULE_PX: u32 = 8;
/// Light modules around the code, on each side (the QR specification's minimum).
pub const QUIET_ZONE_MODULES: u32 = 4;
/// Most bytes of text a code holds: the byte-mode capacity of QR version 40 at level M.
pub const MAX_TEXT_BYTES: usize = 2331;

/// Why no QR code was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    /// There is nothing to encode.
    #[error("nothing to encode in the QR code")]
    Empty,
    /// The text does not fit in one QR code.
    #[error("the text is {len} bytes; a QR code (level M) holds at most {max}")]
    TooLong {
        /// Bytes of the text.
        len: usize,
        /// [`MAX_TEXT_BYTES`].
        max: usize,
    },
    /// The QR encoder refused the text for another reason (its message).
    #[error("the QR encoder failed: {0}")]
    Encode(String),
    /// The PNG encoder failed (its message).
    #[error("the PNG encoder failed: {0}")]
    Png(String),
}

/// The QR code of `text` at level M, or why there is none.
fn code(text: &str) -> Result<QrCode, QrError> {
    if text.is_empty() {
        return Err(QrError::Empty);
    }
    let too_long = QrError::TooLong { len: text.len(), max: MAX_TEXT_BYTES };
    if text.len() > MAX_TEXT_BYTES {
        return Err(too_long);
    }
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|e| match e {
        EncodeError::DataTooLong => too_long,
        other => QrError::Encode(other.to_string()),
    })
}

/// The side of the image of `code`, in pixels: modules plus quiet zone, times [`MODULE_PX`].
fn side_px(code: &QrCode) -> u32 {
    // at most 177 modules (version 40): no overflow
    (code.width() as u32 + 2 * QUIET_ZONE_MODULES) * MODULE_PX
}

/// The dark modules of `code` as horizontal runs `(x, y, length)`, in modules, counted from the
/// image's corner (the quiet zone included).
fn dark_runs(code: &QrCode) -> Vec<(usize, usize, usize)> {
    let (modules, quiet) = (code.width(), QUIET_ZONE_MODULES as usize);
    let colors = code.to_colors();
    let mut runs = Vec::new();
    for (y, row) in colors.chunks(modules).enumerate() {
        let mut x = 0;
        while x < modules {
            let len = row[x..].iter().take_while(|c| **c == Color::Dark).count();
            if len > 0 {
                runs.push((x + quiet, y + quiet, len));
            }
            x += len.max(1);
        }
    }
    runs
}

/// `text` as a QR code in a PNG image (1-bit greyscale, black on white).
pub fn png(text: &str) -> Result<Vec<u8>, QrError> {
    let code = code(text)?;
    let side = side_px(&code) as usize;
    let module_px = MODULE_PX as usize;
    // One bit per pixel, rows padded to whole bytes; a set bit is white (greyscale 1).
    let row_bytes = side.div_ceil(8);
    let mut pixels = vec![0xffu8; row_bytes * side];
    for (mx, my, len) in dark_runs(&code) {
        for y in my * module_px..(my + 1) * module_px {
            for x in mx * module_px..(mx + len) * module_px {
                pixels[y * row_bytes + x / 8] &= !(0x80 >> (x % 8));
            }
        }
    }

    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let mut writer = encoder.write_header().map_err(|e| QrError::Png(e.to_string()))?;
    writer.write_image_data(&pixels).map_err(|e| QrError::Png(e.to_string()))?;
    writer.finish().map_err(|e| QrError::Png(e.to_string()))?;
    Ok(out)
}

/// `text` as a QR code in an SVG document: a white background and one black path, a rectangle
/// per horizontal run of dark modules (`M{x} {y}h{length}v1H{x}z`). The `viewBox` counts modules
/// (quiet zone included); `width` and `height` are [`MODULE_PX`] times that, the PNG's size.
pub fn svg(text: &str) -> Result<String, QrError> {
    let code = code(text)?;
    let modules = code.width() as u32 + 2 * QUIET_ZONE_MODULES;
    let px = side_px(&code);
    let mut path = String::new();
    for (x, y, len) in dark_runs(&code) {
        // writing to a String cannot fail
        let _ = write!(path, "M{x} {y}h{len}v1H{x}z");
    }
    Ok(format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{px}" height="{px}""#,
            r#" viewBox="0 0 {m} {m}" shape-rendering="crispEdges">"#,
            r##"<rect width="{m}" height="{m}" fill="#ffffff"/><path fill="#000000" d="{path}"/></svg>"##,
        ),
        px = px,
        m = modules,
        path = path
    ))
}
