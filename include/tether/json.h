/**
 * @file json.h
 * @brief A small JSON reader (on jsmn) and writer, both in caller memory.
 *
 * Reading: tether_json_parse() checks that the text is exactly one well-formed JSON value
 * (RFC 8259: strict numbers and literals, escapes, UTF-8, no control characters in strings,
 * no trailing commas, no unpaired surrogates), then tokenizes it with jsmn into the caller's
 * token array. Values are then addressed by token index: tether_json_find() follows a
 * dotted member path, the getters convert one value (strings are unescaped into a caller
 * buffer). Nesting deeper than ::TETHER_JSON_MAX_DEPTH is refused before any token is
 * written, so hostile input costs at most one pass and no recursion. When a text has
 * duplicate member names, the first one is found.
 *
 * Writing: a ::tether_json_writer appends into a caller buffer. Errors are sticky and
 * reported once, by tether_json_writer_finish(), which follows the sizing contract: with
 * `buf = NULL` or a buffer too small it returns ::TETHER_BUFFER_TOO_SMALL and the size
 * needed (the buffer then holds a prefix of the text).
 *
 * @code
 * tether_json_token tokens[32];
 * tether_json doc;
 * size_t at, len;
 * char hub[128];
 * if (tether_json_parse(payload, payload_len, tokens, 32, &doc) == TETHER_OK &&
 *     tether_json_find(&doc, 0, "registrationState.assignedHub", &at) == TETHER_OK &&
 *     tether_json_get_string(&doc, at, hub, sizeof hub, &len) == TETHER_OK)
 *     printf("hub %.*s\n", (int)len, hub);
 * @endcode
 */
#ifndef TETHER_JSON_H
#define TETHER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/status.h"
#include "tether/view.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TETHER_JSON_MAX_DEPTH
/** Deepest nesting of objects and arrays accepted by the reader and the writer (1 to 64). */
#define TETHER_JSON_MAX_DEPTH 32
#endif

/** What a value is. */
typedef enum tether_json_type {
    TETHER_JSON_NONE = 0, /**< Not a value: index out of range. */
    TETHER_JSON_OBJECT,
    TETHER_JSON_ARRAY,
    TETHER_JSON_STRING,
    TETHER_JSON_NUMBER,
    TETHER_JSON_BOOL,
    TETHER_JSON_NULL
} tether_json_type;

/** One token of a parsed text (a jsmn token); the fields are private to json.c. */
typedef struct tether_json_token {
    int private_[5];
} tether_json_token;

/** A parsed text: token 0 is the top value; an object's members are key, value pairs. */
typedef struct tether_json {
    const char *text;
    size_t len;
    tether_json_token *tokens;
    size_t count; /**< Tokens used; on TETHER_JSON_TOO_MANY_TOKENS, tokens needed. */
} tether_json;

/**
 * Checks that @p text is one well-formed JSON value (whitespace around it allowed).
 * @param out_tokens if not NULL, the number of tokens tether_json_parse() needs for it.
 * @return TETHER_OK, TETHER_JSON_MALFORMED or TETHER_JSON_TOO_DEEP.
 */
TETHER_MUST_USE tether_status tether_json_validate(const char *text, size_t len,
                                                   size_t *out_tokens);

/**
 * Validates and tokenizes @p text. The document views @p text and @p tokens, which must
 * outlive it.
 * @return TETHER_OK, TETHER_JSON_MALFORMED, TETHER_JSON_TOO_DEEP, or
 *         TETHER_JSON_TOO_MANY_TOKENS with the count needed in @p out_doc->count.
 */
TETHER_MUST_USE tether_status tether_json_parse(const char *text, size_t len,
                                                tether_json_token *tokens, size_t max_tokens,
                                                tether_json *out_doc);

/** The type of the value at @p index (TETHER_JSON_NONE when out of range). */
tether_json_type tether_json_type_of(const tether_json *doc, size_t index);

/** Members of an object or elements of an array at @p index; 0 for other values. */
size_t tether_json_size(const tether_json *doc, size_t index);

/**
 * The index just past the value at @p index and everything inside it. For an object at o,
 * the first key is o + 1, a key's value is key + 1, and the next key is
 * tether_json_next(value); array elements follow the same way.
 */
size_t tether_json_next(const tether_json *doc, size_t index);

/**
 * Finds the member named @p name (compared after unescaping) of the object at @p object.
 * @return TETHER_OK with the value's index, TETHER_JSON_NOT_FOUND, or TETHER_JSON_WRONG_TYPE
 *         when @p object is not an object.
 */
TETHER_MUST_USE tether_status tether_json_member(const tether_json *doc, size_t object,
                                                 const char *name, size_t name_len,
                                                 size_t *out_index);

/**
 * Follows a path of member names separated by '.' from the value at @p from, e.g.
 * "registrationState.assignedHub".
 * @return as tether_json_member() for the first step that fails.
 */
TETHER_MUST_USE tether_status tether_json_find(const tether_json *doc, size_t from,
                                               const char *path, size_t *out_index);

/**
 * Unescapes the string at @p index into @p buf (UTF-8, not NUL-terminated; `\u0000` gives a
 * NUL byte). Sizing contract as the writers: TETHER_BUFFER_TOO_SMALL with the size needed.
 * @return TETHER_JSON_WRONG_TYPE when the value is not a string.
 */
TETHER_MUST_USE tether_status tether_json_get_string(const tether_json *doc, size_t index,
                                                     char *buf, size_t cap, size_t *out_len);

/** True when the value at @p index is a string equal (after unescaping) to @p s. */
bool tether_json_string_equals(const tether_json *doc, size_t index, const char *s, size_t n);

/**
 * Reads an integer: a number without fraction or exponent that fits int64_t.
 * @return TETHER_JSON_WRONG_TYPE for anything else.
 */
TETHER_MUST_USE tether_status tether_json_get_int(const tether_json *doc, size_t index,
                                                  int64_t *out_value);

/** Reads true or false; TETHER_JSON_WRONG_TYPE for anything else. */
TETHER_MUST_USE tether_status tether_json_get_bool(const tether_json *doc, size_t index,
                                                   bool *out_value);

/** The text of the value at @p index as it is in the document (strings with their quotes). */
TETHER_MUST_USE tether_status tether_json_get_raw(const tether_json *doc, size_t index,
                                                  tether_view *out_raw);

/** Builds JSON text in a caller buffer; see the file comment. Fields are private. */
typedef struct tether_json_writer {
    char *buf;
    size_t cap;
    size_t len;         /**< Bytes of the text so far (written or, past cap, only counted). */
    unsigned depth;     /**< Open objects and arrays. */
    uint64_t in_object; /**< Bit d set: the container at depth d is an object. */
    uint64_t has_items; /**< Bit d set: the container at depth d has an element. */
    bool after_key;     /**< A member name was written; its value comes next. */
    bool done;          /**< The top-level value is complete. */
    tether_status error;
} tether_json_writer;

/** Starts a text in @p buf (which may be NULL with @p cap 0 to size it). */
void tether_json_writer_init(tether_json_writer *w, char *buf, size_t cap);
void tether_json_write_object_begin(tether_json_writer *w);
void tether_json_write_object_end(tether_json_writer *w);
void tether_json_write_array_begin(tether_json_writer *w);
void tether_json_write_array_end(tether_json_writer *w);
/** A member name inside an object (UTF-8, escaped as needed). */
void tether_json_write_key(tether_json_writer *w, const char *name, size_t len);
/** A string value (UTF-8, escaped as needed; invalid UTF-8 is TETHER_INVALID_ARGUMENT). */
void tether_json_write_string(tether_json_writer *w, const char *s, size_t len);
void tether_json_write_int(tether_json_writer *w, int64_t value);
void tether_json_write_bool(tether_json_writer *w, bool value);
void tether_json_write_null(tether_json_writer *w);
/** A value given as JSON text, copied as it is once tether_json_validate() accepts it. */
void tether_json_write_raw(tether_json_writer *w, const char *json, size_t len);

/**
 * Ends the text.
 * @return TETHER_OK with its length; TETHER_BUFFER_TOO_SMALL with the size needed; the
 *         first error of a write (TETHER_INVALID_ARGUMENT for a call out of order or bad
 *         UTF-8, TETHER_JSON_MALFORMED for a bad raw value, TETHER_JSON_TOO_DEEP); or
 *         TETHER_INVALID_ARGUMENT when the top value is unfinished.
 */
TETHER_MUST_USE tether_status tether_json_writer_finish(const tether_json_writer *w,
                                                        size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_JSON_H */
