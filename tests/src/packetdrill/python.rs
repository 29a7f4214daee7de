//! The Python subset of `%{ … }%` code blocks, parsed and evaluated in Rust.
//!
//! packetdrill writes every block into a file and runs `python3` on it at the
//! end of the test, after binding the `tcpi_*` names from the TCP_INFO
//! snapshot taken at the block's time (GRAMMAR.md §6). The corpus uses only a
//! small part of Python: `assert EXPR[, MSG]`, chained comparisons,
//! arithmetic, `and`/`or`/`not`, `%` string formatting, name assignment,
//! `;` and `\` to join statements, and `#` comments. This module parses and
//! evaluates exactly that subset (plus tuples, lists, `print` and a few
//! builtins), so a block never needs a Python interpreter.
//!
//! # Deviations from Python
//!
//! Integers are `i128`, not unbounded; an overflow is an error, not a big
//! number. Compound statements (`if`, `for`, `def`) are rejected as
//! unsupported: no script in the corpus uses them. Leading indentation is
//! ignored rather than an `IndentationError`, as packetdrill's single-line
//! blocks (`%{ assert … }%`) start with a space.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

/// A parsed code block.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Program {
    /// The statements in order.
    pub stmts: Vec<Stmt>,
}

/// One simple statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    /// 1-based line within the block (line 1 holds the `%{`).
    pub line: u32,
    /// The statement's source text.
    pub text: String,
    /// What it does.
    pub kind: StmtKind,
}

/// The statement forms the subset has.
#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `assert test[, msg]`.
    Assert {
        /// The condition.
        test: PyExpr,
        /// Source text of the condition, for the failure message.
        test_text: String,
        /// The message expression.
        msg: Option<PyExpr>,
    },
    /// `name = value`.
    Assign {
        /// Target name.
        name: String,
        /// Value.
        value: PyExpr,
    },
    /// An expression evaluated for its effect (`print(x)`).
    Expr(PyExpr),
    /// `pass`.
    Pass,
}

/// A Python expression of the subset.
#[derive(Clone, Debug, PartialEq)]
pub enum PyExpr {
    /// An integer literal.
    Int(i128),
    /// A float literal.
    Float(f64),
    /// A string literal.
    Str(String),
    /// `True`/`False`.
    Bool(bool),
    /// `None`.
    None,
    /// A name.
    Name(String),
    /// `(a, b)`.
    Tuple(Vec<PyExpr>),
    /// `[a, b]`.
    List(Vec<PyExpr>),
    /// `-x`, `+x`, `~x`.
    Unary(char, Box<PyExpr>),
    /// `not x`.
    Not(Box<PyExpr>),
    /// `a OP b` for arithmetic and bitwise operators.
    Binary(BinOp, Box<PyExpr>, Box<PyExpr>),
    /// `a < b <= c …`.
    Compare(Box<PyExpr>, Vec<(CmpOp, PyExpr)>),
    /// `a and b`.
    And(Box<PyExpr>, Box<PyExpr>),
    /// `a or b`.
    Or(Box<PyExpr>, Box<PyExpr>),
    /// `a if cond else b`.
    IfElse(Box<PyExpr>, Box<PyExpr>, Box<PyExpr>),
    /// `name(args)` for the builtins.
    Call(String, Vec<PyExpr>),
}

/// Arithmetic and bitwise operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `//`
    FloorDiv,
    /// `%` (modulo or string formatting)
    Mod,
    /// `**`
    Pow,
    /// `&`
    BitAnd,
    /// `|`
    BitOr,
    /// `^`
    BitXor,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`
    In,
    /// `not in`
    NotIn,
}

/// A runtime value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `int`.
    Int(i128),
    /// `float`.
    Float(f64),
    /// `bool`.
    Bool(bool),
    /// `str`.
    Str(String),
    /// `None`.
    None,
    /// `tuple`.
    Tuple(Vec<Value>),
    /// `list`.
    List(Vec<Value>),
}

impl fmt::Display for Value {
    /// Formats like Python's `str()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => {
                if v.fract() == 0.0 && v.abs() < 1e16 {
                    write!(f, "{v:.1}")
                } else {
                    write!(f, "{v}")
                }
            }
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Str(s) => f.write_str(s),
            Value::None => f.write_str("None"),
            Value::Tuple(v) => {
                f.write_str("(")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", x.repr())?;
                }
                if v.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
            Value::List(v) => {
                f.write_str("[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", x.repr())?;
                }
                f.write_str("]")
            }
        }
    }
}

impl Value {
    /// Python's `repr()`.
    pub fn repr(&self) -> String {
        match self {
            Value::Str(s) => format!("'{s}'"),
            other => other.to_string(),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Value::Int(v) => *v != 0,
            Value::Float(v) => *v != 0.0,
            Value::Bool(b) => *b,
            Value::Str(s) => !s.is_empty(),
            Value::None => false,
            Value::Tuple(v) | Value::List(v) => !v.is_empty(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::Str(_) => "str",
            Value::None => "NoneType",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
        }
    }

    fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(v) => Some(*v),
            Value::Bool(b) => Some(i128::from(*b)),
            _ => None,
        }
    }

    fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            other => other.as_int().map(|v| v as f64),
        }
    }
}

/// Why a block did not pass.
#[derive(Clone, Debug, PartialEq)]
pub enum PyError {
    /// The text is not valid in the subset.
    Syntax {
        /// Line within the block.
        line: u32,
        /// What is wrong.
        message: String,
    },
    /// Valid Python the subset does not implement.
    Unsupported {
        /// Line within the block.
        line: u32,
        /// The construct.
        construct: String,
    },
    /// A run-time error (`NameError`, `TypeError`, `ZeroDivisionError`, overflow).
    Runtime {
        /// Line within the block.
        line: u32,
        /// Python's exception name and message.
        message: String,
    },
    /// An `assert` was false: this is the test failure.
    AssertionFailed {
        /// Line within the block.
        line: u32,
        /// The condition's source text.
        expr: String,
        /// `str()` of the message expression, if the assert had one.
        message: Option<String>,
    },
}

impl PyError {
    /// The line within the block the error is on.
    pub fn line(&self) -> u32 {
        match self {
            PyError::Syntax { line, .. }
            | PyError::Unsupported { line, .. }
            | PyError::Runtime { line, .. }
            | PyError::AssertionFailed { line, .. } => *line,
        }
    }
}

impl fmt::Display for PyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PyError::Syntax { message, .. } => write!(f, "SyntaxError: {message}"),
            PyError::Unsupported { construct, .. } => {
                write!(f, "unsupported Python construct: {construct}")
            }
            PyError::Runtime { message, .. } => f.write_str(message),
            PyError::AssertionFailed {
                expr,
                message: Some(m),
                ..
            } => write!(f, "assert {expr} failed: AssertionError: {m}"),
            PyError::AssertionFailed {
                expr,
                message: None,
                ..
            } => write!(f, "assert {expr} failed: AssertionError"),
        }
    }
}

impl std::error::Error for PyError {}

// ---------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Int(i128),
    Float(f64),
    Str(String),
    Name(String),
    Op(&'static str),
    /// End of a simple statement (newline or `;`).
    End,
}

#[derive(Clone, Debug)]
struct PTok {
    tok: Tok,
    line: u32,
    start: usize,
    end: usize,
}

const OPS: [&str; 31] = [
    "**", "//", "<<", ">>", "<=", ">=", "==", "!=", "+", "-", "*", "/", "%", "&", "|", "^", "~",
    "<", ">", "(", ")", "[", "]", "{", "}", ",", ":", ".", "=", "@", ";",
];

fn lex(src: &str) -> Result<Vec<PTok>, PyError> {
    let b = src.as_bytes();
    let mut out: Vec<PTok> = Vec::new();
    let mut i = 0;
    let mut line = 1u32;
    let mut depth = 0i32;
    let push_end = |out: &mut Vec<PTok>, line: u32, at: usize| {
        if out.last().is_some_and(|t| t.tok != Tok::End) {
            out.push(PTok {
                tok: Tok::End,
                line,
                start: at,
                end: at,
            });
        }
    };
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b'\n' => {
                if depth == 0 {
                    push_end(&mut out, line, i);
                }
                line += 1;
                i += 1;
            }
            b'\\' if b.get(i + 1) == Some(&b'\n') => {
                line += 1;
                i += 2;
            }
            b'\\' if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') => {
                line += 1;
                i += 3;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            c if c.is_ascii_whitespace() => i += 1,
            b';' => {
                push_end(&mut out, line, i);
                i += 1;
            }
            b'\'' | b'"' => {
                let q = c;
                i += 1;
                let mut s = String::new();
                loop {
                    match b.get(i) {
                        None | Some(b'\n') => {
                            return Err(PyError::Syntax {
                                line,
                                message: "EOL while scanning string literal".into(),
                            });
                        }
                        Some(&x) if x == q => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let e = b.get(i + 1).copied().unwrap_or(b'\\');
                            s.push(match e {
                                b'n' => '\n',
                                b't' => '\t',
                                other => char::from(other),
                            });
                            i += 2;
                        }
                        Some(_) => {
                            let ch = src[i..].chars().next().unwrap_or('?');
                            s.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                out.push(PTok {
                    tok: Tok::Str(s),
                    line,
                    start,
                    end: i,
                });
            }
            c if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.')
                {
                    // Stop at `e+`/`e-` exponents handled below.
                    i += 1;
                    if (b[i - 1] == b'e' || b[i - 1] == b'E')
                        && !src[start..i].starts_with("0x")
                        && i < b.len()
                        && (b[i] == b'+' || b[i] == b'-')
                    {
                        i += 1;
                    }
                }
                let text: String = src[start..i].chars().filter(|&c| c != '_').collect();
                let tok = parse_number(&text).ok_or_else(|| PyError::Syntax {
                    line,
                    message: format!("invalid number `{text}`"),
                })?;
                out.push(PTok {
                    tok,
                    line,
                    start,
                    end: i,
                });
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(PTok {
                    tok: Tok::Name(src[start..i].to_string()),
                    line,
                    start,
                    end: i,
                });
            }
            _ => {
                let Some(op) = OPS.iter().find(|op| src[i..].starts_with(**op)) else {
                    return Err(PyError::Syntax {
                        line,
                        message: format!("invalid character `{}`", char::from(c)),
                    });
                };
                match *op {
                    "(" | "[" | "{" => depth += 1,
                    ")" | "]" | "}" => depth -= 1,
                    _ => {}
                }
                i += op.len();
                out.push(PTok {
                    tok: Tok::Op(op),
                    line,
                    start,
                    end: i,
                });
            }
        }
    }
    push_end(&mut out, line, b.len());
    Ok(out)
}

fn parse_number(t: &str) -> Option<Tok> {
    let lower = t.to_ascii_lowercase();
    if let Some(h) = lower.strip_prefix("0x") {
        return i128::from_str_radix(h, 16).ok().map(Tok::Int);
    }
    if let Some(o) = lower.strip_prefix("0o") {
        return i128::from_str_radix(o, 8).ok().map(Tok::Int);
    }
    if let Some(bn) = lower.strip_prefix("0b") {
        return i128::from_str_radix(bn, 2).ok().map(Tok::Int);
    }
    if lower.bytes().all(|c| c.is_ascii_digit()) {
        return lower.parse().ok().map(Tok::Int);
    }
    lower.parse::<f64>().ok().map(Tok::Float)
}

// ---------------------------------------------------------------------------
// Parser

/// Statement keywords outside the subset.
const COMPOUND: [&str; 16] = [
    "if", "for", "while", "def", "class", "with", "try", "import", "from", "lambda", "return",
    "del", "global", "raise", "yield", "elif",
];

struct Parser<'a> {
    src: &'a str,
    toks: Vec<PTok>,
    pos: usize,
}

/// Parses the text of a code block.
pub fn parse_program(src: &str) -> Result<Program, PyError> {
    let toks = lex(src)?;
    let mut p = Parser { src, toks, pos: 0 };
    let mut stmts = Vec::new();
    while p.pos < p.toks.len() {
        if p.peek() == Some(&Tok::End) {
            p.pos += 1;
            continue;
        }
        stmts.push(p.stmt()?);
    }
    Ok(Program { stmts })
}

/// Evaluates one integer expression (used for shell `$((…))` arithmetic).
pub fn eval_int(src: &str) -> Result<i128, PyError> {
    let toks = lex(src)?;
    let mut p = Parser { src, toks, pos: 0 };
    let e = p.expr()?;
    if !matches!(p.peek(), None | Some(Tok::End)) {
        return Err(p.syntax("unexpected text after expression"));
    }
    match Env::empty().eval(&e, 1)? {
        Value::Int(v) => Ok(v),
        v => Err(PyError::Runtime {
            line: 1,
            message: format!("TypeError: expected an int, got {}", v.type_name()),
        }),
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn line(&self) -> u32 {
        self.toks
            .get(self.pos)
            .or_else(|| self.toks.last())
            .map_or(1, |t| t.line)
    }

    fn syntax(&self, message: &str) -> PyError {
        let near = self.toks.get(self.pos).map_or_else(
            || "end of block".to_string(),
            |t| format!("`{}`", &self.src[t.start..t.end]),
        );
        PyError::Syntax {
            line: self.line(),
            message: format!("{message} near {near}"),
        }
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_name(&mut self, name: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Name(n)) if n == name) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<(), PyError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(self.syntax(&format!("expected `{op}`")))
        }
    }

    fn text_from(&self, first: usize) -> String {
        let start = self.toks[first].start;
        let end = self.toks[self.pos - 1].end;
        self.src[start..end].trim().to_string()
    }

    fn stmt(&mut self) -> Result<Stmt, PyError> {
        let first = self.pos;
        let line = self.line();
        let kind = match self.peek() {
            Some(Tok::Name(n)) if n == "assert" => {
                self.pos += 1;
                let test_start = self.pos;
                let test = self.expr()?;
                let test_text = self.text_from(test_start);
                let msg = if self.eat_op(",") {
                    Some(self.expr()?)
                } else {
                    None
                };
                StmtKind::Assert {
                    test,
                    test_text,
                    msg,
                }
            }
            Some(Tok::Name(n)) if n == "pass" => {
                self.pos += 1;
                StmtKind::Pass
            }
            Some(Tok::Name(n)) if COMPOUND.contains(&n.as_str()) => {
                return Err(PyError::Unsupported {
                    line,
                    construct: format!("`{n}` statement"),
                });
            }
            Some(Tok::Name(n))
                if matches!(
                    self.toks.get(self.pos + 1).map(|t| &t.tok),
                    Some(Tok::Op("="))
                ) =>
            {
                let name = n.clone();
                self.pos += 2;
                StmtKind::Assign {
                    name,
                    value: self.expr_list()?,
                }
            }
            _ => StmtKind::Expr(self.expr_list()?),
        };
        match self.peek() {
            None => {}
            Some(Tok::End) => self.pos += 1,
            Some(_) => return Err(self.syntax("expected end of statement")),
        }
        let end_pos = self.pos;
        // Text of the statement without its terminator.
        let mut last = end_pos - 1;
        if self.toks[last].tok == Tok::End && last > first {
            last -= 1;
        }
        let text = self.src[self.toks[first].start..self.toks[last].end]
            .trim()
            .to_string();
        Ok(Stmt { line, text, kind })
    }

    /// `a, b` at statement level makes a tuple.
    fn expr_list(&mut self) -> Result<PyExpr, PyError> {
        let e = self.expr()?;
        if matches!(self.peek(), Some(Tok::Op(","))) {
            let mut v = vec![e];
            while self.eat_op(",") {
                if matches!(self.peek(), None | Some(Tok::End)) {
                    break;
                }
                v.push(self.expr()?);
            }
            return Ok(PyExpr::Tuple(v));
        }
        Ok(e)
    }

    fn expr(&mut self) -> Result<PyExpr, PyError> {
        let e = self.or_expr()?;
        if self.eat_name("if") {
            let cond = self.or_expr()?;
            if !self.eat_name("else") {
                return Err(self.syntax("expected `else`"));
            }
            let other = self.expr()?;
            return Ok(PyExpr::IfElse(Box::new(cond), Box::new(e), Box::new(other)));
        }
        Ok(e)
    }

    fn or_expr(&mut self) -> Result<PyExpr, PyError> {
        let mut e = self.and_expr()?;
        while self.eat_name("or") {
            e = PyExpr::Or(Box::new(e), Box::new(self.and_expr()?));
        }
        Ok(e)
    }

    fn and_expr(&mut self) -> Result<PyExpr, PyError> {
        let mut e = self.not_expr()?;
        while self.eat_name("and") {
            e = PyExpr::And(Box::new(e), Box::new(self.not_expr()?));
        }
        Ok(e)
    }

    fn not_expr(&mut self) -> Result<PyExpr, PyError> {
        if self.eat_name("not") {
            return Ok(PyExpr::Not(Box::new(self.not_expr()?)));
        }
        self.comparison()
    }

    fn cmp_op(&mut self) -> Option<CmpOp> {
        let op = match self.peek()? {
            Tok::Op("==") => CmpOp::Eq,
            Tok::Op("!=") => CmpOp::Ne,
            Tok::Op("<") => CmpOp::Lt,
            Tok::Op("<=") => CmpOp::Le,
            Tok::Op(">") => CmpOp::Gt,
            Tok::Op(">=") => CmpOp::Ge,
            Tok::Name(n) if n == "in" => CmpOp::In,
            Tok::Name(n)
                if n == "not"
                    && matches!(self.toks.get(self.pos + 1).map(|t| &t.tok), Some(Tok::Name(m)) if m == "in") =>
            {
                self.pos += 1;
                CmpOp::NotIn
            }
            _ => return None,
        };
        self.pos += 1;
        Some(op)
    }

    fn comparison(&mut self) -> Result<PyExpr, PyError> {
        let first = self.bitor()?;
        let mut rest = Vec::new();
        while let Some(op) = self.cmp_op() {
            rest.push((op, self.bitor()?));
        }
        if rest.is_empty() {
            Ok(first)
        } else {
            Ok(PyExpr::Compare(Box::new(first), rest))
        }
    }

    fn binary_level(
        &mut self,
        ops: &[(&str, BinOp)],
        next: fn(&mut Self) -> Result<PyExpr, PyError>,
    ) -> Result<PyExpr, PyError> {
        let mut e = next(self)?;
        'outer: loop {
            for (s, op) in ops {
                if self.eat_op(s) {
                    e = PyExpr::Binary(*op, Box::new(e), Box::new(next(self)?));
                    continue 'outer;
                }
            }
            return Ok(e);
        }
    }

    fn bitor(&mut self) -> Result<PyExpr, PyError> {
        self.binary_level(&[("|", BinOp::BitOr)], Self::bitxor)
    }

    fn bitxor(&mut self) -> Result<PyExpr, PyError> {
        self.binary_level(&[("^", BinOp::BitXor)], Self::bitand)
    }

    fn bitand(&mut self) -> Result<PyExpr, PyError> {
        self.binary_level(&[("&", BinOp::BitAnd)], Self::shift)
    }

    fn shift(&mut self) -> Result<PyExpr, PyError> {
        self.binary_level(&[("<<", BinOp::Shl), (">>", BinOp::Shr)], Self::arith)
    }

    fn arith(&mut self) -> Result<PyExpr, PyError> {
        self.binary_level(&[("+", BinOp::Add), ("-", BinOp::Sub)], Self::term)
    }

    fn term(&mut self) -> Result<PyExpr, PyError> {
        self.binary_level(
            &[
                ("*", BinOp::Mul),
                ("//", BinOp::FloorDiv),
                ("/", BinOp::Div),
                ("%", BinOp::Mod),
            ],
            Self::factor,
        )
    }

    fn factor(&mut self) -> Result<PyExpr, PyError> {
        for op in ['-', '+', '~'] {
            let s = match op {
                '-' => "-",
                '+' => "+",
                _ => "~",
            };
            if self.eat_op(s) {
                return Ok(PyExpr::Unary(op, Box::new(self.factor()?)));
            }
        }
        self.power()
    }

    fn power(&mut self) -> Result<PyExpr, PyError> {
        let base = self.atom()?;
        if self.eat_op("**") {
            let exp = self.factor()?;
            return Ok(PyExpr::Binary(BinOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn seq_items(&mut self, close: &str) -> Result<(Vec<PyExpr>, bool), PyError> {
        let mut items = Vec::new();
        let mut trailing_comma = false;
        while !self.eat_op(close) {
            items.push(self.expr()?);
            trailing_comma = self.eat_op(",");
            if !trailing_comma {
                self.expect_op(close)?;
                break;
            }
        }
        Ok((items, trailing_comma))
    }

    fn atom(&mut self) -> Result<PyExpr, PyError> {
        let line = self.line();
        let Some(t) = self.toks.get(self.pos).cloned() else {
            return Err(self.syntax("expected an expression"));
        };
        self.pos += 1;
        let e = match t.tok {
            Tok::Int(v) => PyExpr::Int(v),
            Tok::Float(v) => PyExpr::Float(v),
            Tok::Str(mut s) => {
                // Adjacent literals concatenate.
                while let Some(Tok::Str(more)) = self.peek() {
                    s.push_str(more);
                    self.pos += 1;
                }
                PyExpr::Str(s)
            }
            Tok::Name(n) => match n.as_str() {
                "True" => PyExpr::Bool(true),
                "False" => PyExpr::Bool(false),
                "None" => PyExpr::None,
                "lambda" | "yield" | "await" => {
                    return Err(PyError::Unsupported {
                        line,
                        construct: format!("`{n}` expression"),
                    });
                }
                _ if self.eat_op("(") => {
                    let (args, _) = self.seq_items(")")?;
                    PyExpr::Call(n, args)
                }
                _ => PyExpr::Name(n),
            },
            Tok::Op("(") => {
                let (items, trailing) = self.seq_items(")")?;
                if items.len() == 1 && !trailing {
                    items.into_iter().next().unwrap_or(PyExpr::None)
                } else {
                    PyExpr::Tuple(items)
                }
            }
            Tok::Op("[") => PyExpr::List(self.seq_items("]")?.0),
            Tok::Op("{") => {
                return Err(PyError::Unsupported {
                    line,
                    construct: "dict or set display".into(),
                });
            }
            _ => {
                self.pos -= 1;
                return Err(self.syntax("expected an expression"));
            }
        };
        if matches!(self.peek(), Some(Tok::Op("." | "[" | "("))) {
            return Err(PyError::Unsupported {
                line,
                construct: "attribute access, subscript or call of a non-name".into(),
            });
        }
        Ok(e)
    }
}

// ---------------------------------------------------------------------------
// Evaluator

/// The names a block sees: constants, snapshot values and its own assignments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Env {
    vars: BTreeMap<String, Value>,
    /// Lines written by `print()`.
    pub output: Vec<String>,
}

/// The constants packetdrill binds before every block (GRAMMAR.md §6), with
/// Linux's values: `enum tcp_ca_state`, `TCP_ESTABLISHED…` from
/// `include/net/tcp_states.h` and `TCPI_OPT_*` from `include/uapi/linux/tcp.h`.
pub const TCP_INFO_CONSTANTS: [(&str, i128); 25] = [
    ("TCP_CA_Open", 0),
    ("TCP_CA_Disorder", 1),
    ("TCP_CA_CWR", 2),
    ("TCP_CA_Recovery", 3),
    ("TCP_CA_Loss", 4),
    ("TCP_ESTABLISHED", 1),
    ("TCP_SYN_SENT", 2),
    ("TCP_SYN_RECV", 3),
    ("TCP_FIN_WAIT1", 4),
    ("TCP_FIN_WAIT2", 5),
    ("TCP_TIME_WAIT", 6),
    ("TCP_CLOSE", 7),
    ("TCP_CLOSE_WAIT", 8),
    ("TCP_LAST_ACK", 9),
    ("TCP_LISTEN", 10),
    ("TCP_CLOSING", 11),
    ("TCP_NEW_SYN_RECV", 12),
    ("TCPI_OPT_TIMESTAMPS", 1),
    ("TCPI_OPT_SACK", 2),
    ("TCPI_OPT_WSCALE", 4),
    ("TCPI_OPT_ECN", 8),
    ("TCPI_OPT_ECN_SEEN", 16),
    ("TCPI_OPT_SYN_DATA", 32),
    ("TCPI_OPT_USEC_TS", 64),
    ("TCPI_OPT_TFO_CHILD", 128),
];

impl Env {
    /// An environment with no names at all.
    pub fn empty() -> Self {
        Env::default()
    }

    /// An environment with the constants of [`TCP_INFO_CONSTANTS`] bound.
    pub fn with_constants() -> Self {
        let mut e = Env::empty();
        for (k, v) in TCP_INFO_CONSTANTS {
            e.set(k, Value::Int(v));
        }
        e
    }

    /// Binds (or rebinds) `name`.
    pub fn set(&mut self, name: &str, value: Value) {
        self.vars.insert(name.to_string(), value);
    }

    /// The value bound to `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.vars.get(name)
    }

    /// Binds every entry of a snapshot (`tcpi_snd_cwnd` → 10,
    /// `SK_MEMINFO_RCVBUF` → 131072, …) as an integer.
    pub fn bind_snapshot(&mut self, snapshot: &BTreeMap<String, i128>) {
        for (k, v) in snapshot {
            self.set(k, Value::Int(*v));
        }
    }

    /// Runs `program`; `Ok` means every assert held.
    pub fn run(&mut self, program: &Program) -> Result<(), PyError> {
        for s in &program.stmts {
            match &s.kind {
                StmtKind::Assert {
                    test,
                    test_text,
                    msg,
                } => {
                    if !self.eval(test, s.line)?.truthy() {
                        let message = match msg {
                            Some(m) => Some(self.eval(m, s.line)?.to_string()),
                            None => None,
                        };
                        return Err(PyError::AssertionFailed {
                            line: s.line,
                            expr: test_text.clone(),
                            message,
                        });
                    }
                }
                StmtKind::Assign { name, value } => {
                    let v = self.eval(value, s.line)?;
                    self.set(name, v);
                }
                StmtKind::Expr(e) => {
                    self.eval(e, s.line)?;
                }
                StmtKind::Pass => {}
            }
        }
        Ok(())
    }

    fn eval(&mut self, e: &PyExpr, line: u32) -> Result<Value, PyError> {
        let rt = |message: String| PyError::Runtime { line, message };
        Ok(match e {
            PyExpr::Int(v) => Value::Int(*v),
            PyExpr::Float(v) => Value::Float(*v),
            PyExpr::Str(s) => Value::Str(s.clone()),
            PyExpr::Bool(b) => Value::Bool(*b),
            PyExpr::None => Value::None,
            PyExpr::Name(n) => self
                .vars
                .get(n)
                .cloned()
                .ok_or_else(|| rt(format!("NameError: name '{n}' is not defined")))?,
            PyExpr::Tuple(v) => Value::Tuple(
                v.iter()
                    .map(|x| self.eval(x, line))
                    .collect::<Result<_, _>>()?,
            ),
            PyExpr::List(v) => Value::List(
                v.iter()
                    .map(|x| self.eval(x, line))
                    .collect::<Result<_, _>>()?,
            ),
            PyExpr::Unary(op, x) => {
                let v = self.eval(x, line)?;
                match (op, &v) {
                    ('-', Value::Float(f)) => Value::Float(-f),
                    ('+', Value::Float(f)) => Value::Float(*f),
                    (op, v) => {
                        let i = v.as_int().ok_or_else(|| {
                            rt(format!(
                                "TypeError: bad operand type for unary {op}: '{}'",
                                v.type_name()
                            ))
                        })?;
                        Value::Int(match op {
                            '-' => i.checked_neg().ok_or_else(|| rt("OverflowError".into()))?,
                            '~' => !i,
                            _ => i,
                        })
                    }
                }
            }
            PyExpr::Not(x) => Value::Bool(!self.eval(x, line)?.truthy()),
            PyExpr::And(a, b) => {
                let l = self.eval(a, line)?;
                if l.truthy() { self.eval(b, line)? } else { l }
            }
            PyExpr::Or(a, b) => {
                let l = self.eval(a, line)?;
                if l.truthy() { l } else { self.eval(b, line)? }
            }
            PyExpr::IfElse(cond, a, b) => {
                if self.eval(cond, line)?.truthy() {
                    self.eval(a, line)?
                } else {
                    self.eval(b, line)?
                }
            }
            PyExpr::Compare(first, rest) => {
                let mut left = self.eval(first, line)?;
                for (op, r) in rest {
                    let right = self.eval(r, line)?;
                    if !compare(*op, &left, &right).map_err(rt)? {
                        return Ok(Value::Bool(false));
                    }
                    left = right;
                }
                Value::Bool(true)
            }
            PyExpr::Binary(op, a, b) => {
                let l = self.eval(a, line)?;
                let r = self.eval(b, line)?;
                binary(*op, &l, &r).map_err(rt)?
            }
            PyExpr::Call(name, args) => {
                let args: Vec<Value> = args
                    .iter()
                    .map(|x| self.eval(x, line))
                    .collect::<Result<_, _>>()?;
                self.call(name, &args).map_err(rt)?
            }
        })
    }

    fn call(&mut self, name: &str, args: &[Value]) -> Result<Value, String> {
        let one = || {
            if args.len() == 1 {
                Ok(&args[0])
            } else {
                Err(format!(
                    "TypeError: {name}() takes exactly one argument ({} given)",
                    args.len()
                ))
            }
        };
        match name {
            "print" => {
                let line: Vec<String> = args.iter().map(ToString::to_string).collect();
                self.output.push(line.join(" "));
                Ok(Value::None)
            }
            "len" => match one()? {
                Value::Str(s) => Ok(Value::Int(s.chars().count() as i128)),
                Value::Tuple(v) | Value::List(v) => Ok(Value::Int(v.len() as i128)),
                v => Err(format!(
                    "TypeError: object of type '{}' has no len()",
                    v.type_name()
                )),
            },
            "abs" => match one()? {
                Value::Float(f) => Ok(Value::Float(f.abs())),
                v => v.as_int().map(|i| Value::Int(i.abs())).ok_or_else(|| {
                    format!("TypeError: bad operand type for abs(): '{}'", v.type_name())
                }),
            },
            "int" => match one()? {
                Value::Float(f) => Ok(Value::Int(f.trunc() as i128)),
                Value::Str(s) => s
                    .trim()
                    .parse()
                    .map(Value::Int)
                    .map_err(|_| format!("ValueError: invalid literal for int(): '{s}'")),
                v => v.as_int().map(Value::Int).ok_or_else(|| {
                    format!(
                        "TypeError: int() argument must be a number, not '{}'",
                        v.type_name()
                    )
                }),
            },
            "float" => one()?
                .as_float()
                .map(Value::Float)
                .ok_or_else(|| "TypeError: float() argument must be a number".to_string()),
            "str" => Ok(Value::Str(one()?.to_string())),
            "bool" => Ok(Value::Bool(one()?.truthy())),
            "min" | "max" => {
                let items: Vec<Value> = match args {
                    [Value::Tuple(v) | Value::List(v)] => v.clone(),
                    _ => args.to_vec(),
                };
                let mut best: Option<Value> = None;
                for v in items {
                    best = Some(match best {
                        None => v,
                        Some(b) => {
                            let pick_new = if name == "min" {
                                compare(CmpOp::Lt, &v, &b)?
                            } else {
                                compare(CmpOp::Gt, &v, &b)?
                            };
                            if pick_new { v } else { b }
                        }
                    });
                }
                best.ok_or_else(|| format!("ValueError: {name}() arg is an empty sequence"))
            }
            _ => Err(format!("NameError: name '{name}' is not defined")),
        }
    }
}

fn compare(op: CmpOp, l: &Value, r: &Value) -> Result<bool, String> {
    use std::cmp::Ordering;
    if matches!(op, CmpOp::In | CmpOp::NotIn) {
        let found = match r {
            Value::Tuple(v) | Value::List(v) => v.iter().any(|x| values_equal(l, x)),
            Value::Str(s) => match l {
                Value::Str(n) => s.contains(n.as_str()),
                _ => return Err("TypeError: 'in <string>' requires string as left operand".into()),
            },
            _ => {
                return Err(format!(
                    "TypeError: argument of type '{}' is not iterable",
                    r.type_name()
                ));
            }
        };
        return Ok(found == (op == CmpOp::In));
    }
    if matches!(op, CmpOp::Eq | CmpOp::Ne) {
        return Ok(values_equal(l, r) == (op == CmpOp::Eq));
    }
    let ord: Option<Ordering> = match (l, r) {
        (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
        (Value::Int(_) | Value::Bool(_), Value::Int(_) | Value::Bool(_)) => {
            Some(l.as_int().cmp(&r.as_int()))
        }
        _ => match (l.as_float(), r.as_float()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => {
                return Err(format!(
                    "TypeError: '<' not supported between instances of '{}' and '{}'",
                    l.type_name(),
                    r.type_name()
                ));
            }
        },
    };
    let Some(ord) = ord else { return Ok(false) };
    Ok(match op {
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        _ => ord != Ordering::Less,
    })
}

#[allow(clippy::float_cmp)] // Python compares floats exactly.
fn values_equal(l: &Value, r: &Value) -> bool {
    match (l, r) {
        (Value::Str(a), Value::Str(b)) => a == b,
        (Value::None, Value::None) => true,
        (Value::Tuple(a), Value::Tuple(b)) | (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| values_equal(x, y))
        }
        _ => match (l.as_int(), r.as_int()) {
            (Some(a), Some(b)) => a == b,
            _ => match (l.as_float(), r.as_float()) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
        },
    }
}

fn binary(op: BinOp, l: &Value, r: &Value) -> Result<Value, String> {
    if let (BinOp::Mod, Value::Str(fmt)) = (op, l) {
        return percent_format(fmt, r);
    }
    if op == BinOp::Add {
        match (l, r) {
            (Value::Str(a), Value::Str(b)) => return Ok(Value::Str(format!("{a}{b}"))),
            (Value::List(a), Value::List(b)) => {
                return Ok(Value::List(a.iter().chain(b).cloned().collect()));
            }
            (Value::Tuple(a), Value::Tuple(b)) => {
                return Ok(Value::Tuple(a.iter().chain(b).cloned().collect()));
            }
            _ => {}
        }
    }
    let type_err = || {
        format!(
            "TypeError: unsupported operand type(s) for {op:?}: '{}' and '{}'",
            l.type_name(),
            r.type_name()
        )
    };
    let overflow = || "OverflowError: integer result too large".to_string();
    if let (Some(a), Some(b)) = (l.as_int(), r.as_int()) {
        let zero = || "ZeroDivisionError: integer division or modulo by zero".to_string();
        return Ok(match op {
            BinOp::Add => Value::Int(a.checked_add(b).ok_or_else(overflow)?),
            BinOp::Sub => Value::Int(a.checked_sub(b).ok_or_else(overflow)?),
            BinOp::Mul => Value::Int(a.checked_mul(b).ok_or_else(overflow)?),
            BinOp::Div => {
                if b == 0 {
                    return Err("ZeroDivisionError: division by zero".into());
                }
                Value::Float(a as f64 / b as f64)
            }
            BinOp::FloorDiv => {
                if b == 0 {
                    return Err(zero());
                }
                Value::Int(a.div_euclid(b) - i128::from(b < 0 && a.rem_euclid(b) != 0))
            }
            BinOp::Mod => {
                if b == 0 {
                    return Err(zero());
                }
                let m = a.rem_euclid(b);
                Value::Int(if b < 0 && m != 0 { m + b } else { m })
            }
            BinOp::Pow => {
                if b < 0 {
                    Value::Float((a as f64).powf(b as f64))
                } else {
                    let e = u32::try_from(b).map_err(|_| overflow())?;
                    Value::Int(a.checked_pow(e).ok_or_else(overflow)?)
                }
            }
            BinOp::BitAnd => Value::Int(a & b),
            BinOp::BitOr => Value::Int(a | b),
            BinOp::BitXor => Value::Int(a ^ b),
            BinOp::Shl => {
                let s =
                    u32::try_from(b).map_err(|_| "ValueError: negative shift count".to_string())?;
                Value::Int(
                    a.checked_shl(s)
                        .filter(|v| v >> s == a)
                        .ok_or_else(overflow)?,
                )
            }
            BinOp::Shr => {
                let s =
                    u32::try_from(b).map_err(|_| "ValueError: negative shift count".to_string())?;
                Value::Int(if s >= 127 {
                    if a < 0 { -1 } else { 0 }
                } else {
                    a >> s
                })
            }
        });
    }
    let (Some(a), Some(b)) = (l.as_float(), r.as_float()) else {
        return Err(type_err());
    };
    Ok(Value::Float(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div | BinOp::FloorDiv | BinOp::Mod if b == 0.0 => {
            return Err("ZeroDivisionError: float division by zero".into());
        }
        BinOp::Div => a / b,
        BinOp::FloorDiv => (a / b).floor(),
        BinOp::Mod => a - b * (a / b).floor(),
        BinOp::Pow => a.powf(b),
        _ => return Err(type_err()),
    }))
}

/// `'fmt' % value` with `%d %i %s %r %x %X %f %%` and an optional width.
fn percent_format(fmt: &str, arg: &Value) -> Result<Value, String> {
    let args: Vec<&Value> = match arg {
        Value::Tuple(v) => v.iter().collect(),
        other => vec![other],
    };
    let mut next = args.into_iter();
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '-' || d == '.' {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let conv = chars
            .next()
            .ok_or_else(|| "ValueError: incomplete format".to_string())?;
        if conv == '%' {
            out.push('%');
            continue;
        }
        let v = next
            .next()
            .ok_or_else(|| "TypeError: not enough arguments for format string".to_string())?;
        let body = match conv {
            'd' | 'i' => match v {
                Value::Float(f) => format!("{}", f.trunc() as i128),
                _ => v
                    .as_int()
                    .ok_or_else(|| {
                        format!(
                            "TypeError: %d format: a number is required, not {}",
                            v.type_name()
                        )
                    })?
                    .to_string(),
            },
            's' => v.to_string(),
            'r' => v.repr(),
            'x' | 'X' => {
                let i = v.as_int().ok_or_else(|| {
                    format!(
                        "TypeError: %x format: an integer is required, not {}",
                        v.type_name()
                    )
                })?;
                if conv == 'x' {
                    format!("{i:x}")
                } else {
                    format!("{i:X}")
                }
            }
            'f' => {
                let f = v.as_float().ok_or_else(|| {
                    format!("TypeError: must be real number, not {}", v.type_name())
                })?;
                let prec = spec
                    .split_once('.')
                    .and_then(|(_, p)| p.parse().ok())
                    .unwrap_or(6usize);
                format!("{f:.prec$}")
            }
            other => {
                return Err(format!(
                    "ValueError: unsupported format character '{other}'"
                ));
            }
        };
        let width: usize = spec
            .split('.')
            .next()
            .unwrap_or("")
            .trim_start_matches('-')
            .parse()
            .unwrap_or(0);
        if spec.starts_with('-') {
            let _ = write!(out, "{body:<width$}");
        } else {
            let _ = write!(out, "{body:>width$}");
        }
    }
    if next.next().is_some() {
        return Err("TypeError: not all arguments converted during string formatting".into());
    }
    Ok(Value::Str(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(src: &str, vars: &[(&str, i128)]) -> Result<Env, PyError> {
        let p = parse_program(src)?;
        let mut env = Env::with_constants();
        let snap: BTreeMap<String, i128> =
            vars.iter().map(|(k, v)| ((*k).to_string(), *v)).collect();
        env.bind_snapshot(&snap);
        env.run(&p)?;
        Ok(env)
    }

    #[test]
    fn chained_comparison_and_continuations() {
        let src = " assert 19000 <= tcpi_sndbuf_limited <= 21000, tcpi_sndbuf_limited;\\\n\
                   \t assert 69000 <= tcpi_busy_time <= 73000, tcpi_busy_time;\\\n\
                   \t assert 0 == tcpi_rwnd_limited, tcpi_rwnd_limited ";
        let vars = [
            ("tcpi_sndbuf_limited", 20000),
            ("tcpi_busy_time", 70000),
            ("tcpi_rwnd_limited", 0),
        ];
        run_with(src, &vars).unwrap();
        let err = run_with(src, &[vars[0], ("tcpi_busy_time", 73001), vars[2]]).unwrap_err();
        assert_eq!(
            err,
            PyError::AssertionFailed {
                line: 2,
                expr: "69000 <= tcpi_busy_time <= 73000".into(),
                message: Some("73001".into())
            }
        );
    }

    #[test]
    fn percent_formatting_message() {
        let err = run_with(
            " assert tcpi_snd_cwnd == 10, 'cwnd=%d' % tcpi_snd_cwnd ",
            &[("tcpi_snd_cwnd", 12)],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "assert tcpi_snd_cwnd == 10 failed: AssertionError: cwnd=12"
        );
        let env = run_with("x = '%s/%5d|%-3x|%.2f%%' % ('a', 42, 255, 1.5)", &[]).unwrap();
        assert_eq!(env.get("x"), Some(&Value::Str("a/   42|ff |1.50%".into())));
    }

    #[test]
    fn constants_comments_and_assignment() {
        let src = "\nTCP_INFINITE_SSTHRESH = 0x7fffffff\n\
                   assert tcpi_ca_state == TCP_CA_Recovery, tcpi_ca_state  # comment\n\
                   assert tcpi_snd_ssthresh < TCP_INFINITE_SSTHRESH\n\
                   assert tcpi_options & TCPI_OPT_SACK and not tcpi_options & TCPI_OPT_ECN\n";
        run_with(
            src,
            &[
                ("tcpi_ca_state", 3),
                ("tcpi_snd_ssthresh", 7),
                ("tcpi_options", 7),
            ],
        )
        .unwrap();
        let e = run_with(
            src,
            &[
                ("tcpi_ca_state", 0),
                ("tcpi_snd_ssthresh", 7),
                ("tcpi_options", 7),
            ],
        )
        .unwrap_err();
        assert_eq!(e.line(), 3);
    }

    #[test]
    fn arithmetic_follows_python() {
        let cases = [
            ("-7 // 2", Value::Int(-4)),
            ("-7 % 3", Value::Int(2)),
            ("7 % -3", Value::Int(-2)),
            ("7 / 2", Value::Float(3.5)),
            ("2 ** 10", Value::Int(1024)),
            ("1 << 4 | 1", Value::Int(17)),
            ("(1, 2) == (1, 2)", Value::Bool(true)),
            ("3 in [1, 2, 3]", Value::Bool(true)),
            ("max(3, 9, 4) - min([5, 2])", Value::Int(7)),
            ("1 if 0 else 2", Value::Int(2)),
            ("0 or 5", Value::Int(5)),
            ("True + 1", Value::Int(2)),
        ];
        for (src, want) in cases {
            let env = run_with(&format!("r = {src}"), &[]).unwrap();
            assert_eq!(env.get("r"), Some(&want), "{src}");
        }
    }

    #[test]
    fn errors_are_named() {
        let e = run_with("assert tcpi_nope == 1", &[]).unwrap_err();
        assert_eq!(e.to_string(), "NameError: name 'tcpi_nope' is not defined");
        let e = run_with("x = 1 // 0", &[]).unwrap_err();
        assert!(e.to_string().starts_with("ZeroDivisionError"), "{e}");
        let e = parse_program("if x:\n  pass").unwrap_err();
        assert!(matches!(e, PyError::Unsupported { .. }), "{e:?}");
        let e = parse_program("assert (1 ==").unwrap_err();
        assert!(matches!(e, PyError::Syntax { .. }), "{e:?}");
        let e = parse_program("x.y = 1").unwrap_err();
        assert!(matches!(e, PyError::Unsupported { .. }), "{e:?}");
    }

    #[test]
    fn print_collects_output() {
        let env = run_with("print('cwnd', tcpi_snd_cwnd)", &[("tcpi_snd_cwnd", 10)]).unwrap();
        assert_eq!(env.output, vec!["cwnd 10".to_string()]);
    }

    #[test]
    fn shell_arithmetic() {
        assert_eq!(eval_int("32*1024*1024").unwrap(), 33554432);
        assert_eq!(eval_int("256 * 1024").unwrap(), 262144);
        assert!(eval_int("1 +").is_err());
    }
}
