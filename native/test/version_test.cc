#include <doctest/doctest.h>
#include "version.h"

TEST_CASE("fnv1a64 matches the published test vectors") {
  CHECK(roost::fnv1a64("") == 0xcbf29ce484222325ull);
  CHECK(roost::fnv1a64("a") == 0xaf63dc4c8601ec8cull);
  CHECK(roost::fnv1a64("foobar") == 0x85944171f73967e8ull);
}
