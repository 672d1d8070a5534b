//! The images are read back with a QR decoder (rqrr): the exact text must come out.

use parkpay_qr::{MAX_TEXT_BYTES, MODULE_PX, QUIET_ZONE_MODULES, QrError, png, svg};

const UPI: &str = "upi://pay?pa=parkpay@ybl&pn=Smart%20Parking&am=100.00&cu=INR&tr=PP01JD8X5A2B3C4D5E6F7G8H9J0K";

/// A JWT-like text of about 600 characters (base64url segments, two dots).
fn jwt_like() -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let segment = |len: usize, salt: usize| -> String {
        (0..len).map(|i| alphabet[(i * 37 + salt * 11 + i / 7) % 64] as char).collect()
    };
    format!("eyJ{}.{}.{}", segment(104, 1), segment(404, 2), segment(86, 3))
}

/// A decoded picture: one byte of luminance per pixel.
struct Grey {
    side: usize,
    pixels: Vec<u8>,
}

fn read_png(bytes: &[u8]) -> Grey {
    let mut decoder = ::png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(::png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.color_type, info.bit_depth), (::png::ColorType::Grayscale, ::png::BitDepth::Eight));
    assert_eq!(info.width, info.height);
    pixels.truncate(info.buffer_size());
    Grey { side: info.width as usize, pixels }
}

/// Draws the SVG the way a browser would at its `width`: the white background, then every
/// `M{x} {y}h{len}v1H{x}z` run of the dark path, scaled from `viewBox` units. Checks the frame.
fn read_svg(text: &str) -> Grey {
    assert!(text.starts_with("<?xml") && text.ends_with("</svg>"), "{text:.200}");
    let side = attr(text, "width");
    assert_eq!(attr(text, "height"), side);
    let view_box = text.split(r#"viewBox="0 0 "#).nth(1).unwrap().split('"').next().unwrap();
    let (w, h) = view_box.split_once(' ').unwrap();
    let modules: usize = w.parse().unwrap();
    assert_eq!(h.parse::<usize>().unwrap(), modules);
    assert_eq!(side, modules * MODULE_PX as usize);
    let scale = MODULE_PX as usize;
    let mut pixels = vec![255u8; side * side];
    let path = text.split(r##"<path fill="#000000" d=""##).nth(1).unwrap().split('"').next().unwrap();
    assert!(path.ends_with('z'));
    for run in path.split_terminator('z') {
        let (x, rest) = run.strip_prefix('M').unwrap().split_once(' ').unwrap();
        let (y, rest) = rest.split_once('h').unwrap();
        let (len, x_again) = rest.split_once("v1H").unwrap();
        assert_eq!(x, x_again, "{run}");
        let [x, y, len] = [x, y, len].map(|n| n.parse::<usize>().unwrap());
        for row in y * scale..(y + 1) * scale {
            pixels[row * side + x * scale..row * side + (x + len) * scale].fill(0);
        }
    }
    Grey { side, pixels }
}

fn attr(text: &str, name: &str) -> usize {
    let start = text.find(&format!(r#" {name}=""#)).unwrap() + name.len() + 3;
    text[start..].split('"').next().unwrap().parse().unwrap()
}

/// Decodes the one QR code of the picture: its text and its version.
fn decode(grey: &Grey) -> (String, usize) {
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(grey.side, grey.side, |x, y| grey.pixels[y * grey.side + x]);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (meta, text) = grids[0].decode().unwrap();
    assert_eq!(meta.ecc_level, 0, "error correction M");
    (text, meta.version.0)
}

/// The picture's dark modules, read at each module's centre (quiet zone included).
fn modules(grey: &Grey) -> Vec<bool> {
    let px = MODULE_PX as usize;
    assert_eq!(grey.side % px, 0);
    let n = grey.side / px;
    (0..n * n).map(|i| grey.pixels[((i / n) * px + px / 2) * grey.side + (i % n) * px + px / 2] < 128).collect()
}

fn check_layout(grey: &Grey, version: usize) {
    let quiet = QUIET_ZONE_MODULES as usize;
    let n = version * 4 + 17 + 2 * quiet;
    assert_eq!(grey.side, n * MODULE_PX as usize);
    let dark = modules(grey);
    for (i, is_dark) in dark.iter().enumerate() {
        let (x, y) = (i % n, i / n);
        let in_quiet_zone = x < quiet || y < quiet || x >= n - quiet || y >= n - quiet;
        assert!(!(in_quiet_zone && *is_dark), "dark module in the quiet zone at ({x}, {y})");
    }
    // every pixel of a module has the module's colour (crisp 8-pixel squares)
    for (i, pixel) in grey.pixels.iter().enumerate() {
        let (x, y) = (i % grey.side, i / grey.side);
        let module = (y / MODULE_PX as usize) * n + x / MODULE_PX as usize;
        assert_eq!(*pixel < 128, dark[module], "pixel ({x}, {y})");
        assert!(*pixel == 0 || *pixel == 255);
    }
}

#[test]
fn png_of_a_upi_link_reads_back_exactly() {
    let image = png(UPI).unwrap();
    assert!(image.starts_with(b"\x89PNG\r\n\x1a\n"));
    let grey = read_png(&image);
    let (text, version) = decode(&grey);
    assert_eq!(text, UPI);
    check_layout(&grey, version);
    assert_eq!(png(UPI).unwrap(), image, "deterministic");
}

#[test]
fn png_of_a_pass_reads_back_exactly() {
    let pass = jwt_like();
    assert!((590..=610).contains(&pass.len()), "{}", pass.len());
    let image = png(&pass).unwrap();
    let grey = read_png(&image);
    let (text, version) = decode(&grey);
    assert_eq!(text, pass);
    check_layout(&grey, version);
    // still a screen-sized image, and small (1-bit)
    assert!(grey.side <= 1000 && image.len() < 16 * 1024, "{} px, {} bytes", grey.side, image.len());
}

#[test]
fn svg_is_well_formed_and_reads_back_exactly() {
    for text in [UPI.to_owned(), jwt_like()] {
        let image = svg(&text).unwrap();
        assert_eq!(svg(&text).unwrap(), image, "deterministic");
        let grey = read_svg(&image);
        let (decoded, version) = decode(&grey);
        assert_eq!(decoded, text);
        check_layout(&grey, version);
        // the same modules as the PNG of the same text
        assert_eq!(modules(&grey), modules(&read_png(&png(&text).unwrap())));
        assert!(modules(&grey).iter().filter(|d| **d).count() > 100);
    }
}

#[test]
fn limits_are_clear_errors() {
    assert_eq!(png(""), Err(QrError::Empty));
    assert_eq!(svg(""), Err(QrError::Empty));
    let longest = "a".repeat(MAX_TEXT_BYTES);
    let too_long = QrError::TooLong { len: MAX_TEXT_BYTES + 1, max: MAX_TEXT_BYTES };
    assert_eq!(png(&format!("{longest}a")), Err(too_long.clone()));
    assert_eq!(svg(&format!("{longest}a")), Err(too_long.clone()));
    assert_eq!(too_long.to_string(), "the text is 2332 bytes; a QR code (level M) holds at most 2331");
    // the longest text fits (version 40) and reads back
    let (text, version) = decode(&read_png(&png(&longest).unwrap()));
    assert_eq!((text.len(), version), (MAX_TEXT_BYTES, 40));
    // multi-byte characters count as bytes
    let wide = "₹".repeat(MAX_TEXT_BYTES / 3 + 1);
    assert_eq!(png(&wide), Err(QrError::TooLong { len: wide.len(), max: MAX_TEXT_BYTES }));
}
