/* test_dest_check.c - the pure parts of the destination checks: version
 * order and missing module names (the checks themselves run against real
 * servers in integration_dest_check). */
#include <criterion/criterion.h>

#include "dest_check.h"

Test(dest_check, versions_compare_by_major_minor_patch)
{
    cr_assert_eq(dest_check_version_cmp("7.0.15", "7.2.4"), -1);
    cr_assert_eq(dest_check_version_cmp("7.2.4", "7.0.15"), 1);
    cr_assert_eq(dest_check_version_cmp("7.0.15", "7.0.15"), 0);
    cr_assert_eq(dest_check_version_cmp("6.2.14", "7.0.0"), -1);
    cr_assert_eq(dest_check_version_cmp("7.0.9", "7.0.10"), -1, "numbers, not text");
    cr_assert_eq(dest_check_version_cmp("8.0.0", "7.4.1"), 1);
    cr_assert_eq(dest_check_version_cmp("7.4", "7.4.0"), 0);
}

Test(dest_check, missing_modules_are_named)
{
    char out[128];
    cr_assert_eq(dest_check_missing_names("ReJSON,search", "search", out, sizeof(out)), 1);
    cr_assert_str_eq(out, "ReJSON");
    cr_assert_eq(dest_check_missing_names("ReJSON,search", "", out, sizeof(out)), 2);
    cr_assert_str_eq(out, "ReJSON, search");
    cr_assert_eq(dest_check_missing_names("ReJSON,search", "SEARCH,rejson,bf", out, sizeof(out)), 0,
                 "any case, any order, extra ones fine");
    cr_assert_str_eq(out, "");
    cr_assert_eq(dest_check_missing_names("", "x", out, sizeof(out)), 0);
    cr_assert_eq(dest_check_missing_names("searchlight", "search", out, sizeof(out)), 1,
                 "a prefix is another name");
}
