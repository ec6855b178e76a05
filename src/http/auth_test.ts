import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { bearerToken, constantTimeEqual } from "./auth.ts";

describe("auth", () => {
  it("constantTimeEqual compares exactly", () => {
    assert.equal(constantTimeEqual("abc", "abc"), true);
    for (const x of ["", "ab", "abd", "abcd", "xbc", "ABC"]) {
      assert.equal(constantTimeEqual(x, "abc"), false, x);
    }
    assert.equal(constantTimeEqual("", ""), true);
    assert.equal(constantTimeEqual("é", "é"), true);
    assert.equal(constantTimeEqual("abcabc", "abc"), false, "a repeat of the secret");
    assert.equal(constantTimeEqual("abc", "abcabc"), false, "a prefix that repeats");
    // Lone surrogates are not one character: they differ (an encoder would make both U+FFFD).
    assert.equal(constantTimeEqual("\ud800", "\udfff"), false);
  });

  it("bearerToken reads RFC 6750 §2.1 headers only", () => {
    assert.equal(bearerToken("Bearer abc-_.~+/="), "abc-_.~+/=");
    assert.equal(bearerToken("bearer xyz"), "xyz");
    assert.equal(bearerToken("Basic abc"), undefined);
    assert.equal(bearerToken("Bearer"), undefined);
    assert.equal(bearerToken(null), undefined);
    assert.equal(bearerToken("Bearer a b"), undefined);
  });
});
