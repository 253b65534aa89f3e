"""The plan history's AWS side (issue 15), as template.yaml declares it: a Glue table over
history/ with partition projection and the writer's columns, an Athena workgroup that
enforces encrypted results and a scan limit, an analyst policy scoped to the history, and a
lifecycle of its own. DuckDB stays out of the Lambda layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from achieveit_sandbox.cloudformation import load_template
from achieveit_sync.backup.history import HISTORY_COLUMNS, PARTITION_COLUMNS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


def resource(template: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(template["Resources"][name]["Properties"])


def test_the_table_declares_the_columns_the_backup_writes(template: dict[str, Any]) -> None:
    table = resource(template, "HistoryTable")["TableInput"]
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    partitions = [(c["Name"], c["Type"]) for c in table["PartitionKeys"]]

    assert table["Name"] == "plan_item_history"
    assert columns == [c for c in HISTORY_COLUMNS if c[0] not in PARTITION_COLUMNS]
    # Partitioned by day alone: plan_id is a column, so no query needs a plan_id predicate
    # and every plan is in the table, in PlanIds or not.
    assert partitions == [("snapshot_date", "string")]
    assert columns[0] == ("plan_id", "string")
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == (
        "org.apache.hive.hcatalog.data.JsonSerDe"
    )
    assert table["StorageDescriptor"]["Location"] == {"Fn::Sub": "s3://${BackupBucket}/history/"}


def test_partitions_are_projected_not_crawled(template: dict[str, Any]) -> None:
    parameters = resource(template, "HistoryTable")["TableInput"]["Parameters"]

    assert parameters["projection.enabled"] == "true"
    # No projection of plan_id ("injected" refuses every query without WHERE plan_id = ...;
    # an enum of PlanIds hides the plans outside it).
    assert not [name for name in parameters if name.startswith("projection.plan_id")]
    assert "injected" not in repr(parameters)
    assert parameters["projection.snapshot_date.type"] == "date"
    assert parameters["projection.snapshot_date.format"] == "yyyy-MM-dd"
    assert parameters["projection.snapshot_date.range"] == {
        "Fn::Sub": "NOW-${HistoryRetentionDays}DAYS,NOW"
    }
    assert parameters["storage.location.template"] == {
        "Fn::Sub": "s3://${BackupBucket}/history/snapshot_date=${!snapshot_date}/"
    }
    types = {spec["Type"] for spec in template["Resources"].values()}
    assert "AWS::Glue::Crawler" not in types


def test_the_workgroup_enforces_encrypted_results_and_a_scan_limit(
    template: dict[str, Any],
) -> None:
    configuration = resource(template, "HistoryWorkGroup")["WorkGroupConfiguration"]
    results = configuration["ResultConfiguration"]

    # Not from the stack name (up to 128 characters alone; a workgroup name is at most 128).
    name = resource(template, "HistoryWorkGroup")["Name"]["Fn::Sub"]
    assert name[0] == "achieveit-sync-history-${Suffix}"
    assert "AWS::StackName" not in repr(name)
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == {
        "Ref": "HistoryBytesScannedCutoffPerQuery"
    }
    assert results["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    assert results["OutputLocation"] == {"Fn::Sub": "s3://${HistoryQueryResultsBucket}/results/"}
    bucket = resource(template, "HistoryQueryResultsBucket")
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    [rule] = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "HistoryQueryResultsDays"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())


def test_every_named_query_is_in_the_workgroup_and_database(template: dict[str, Any]) -> None:
    queries = [
        spec["Properties"]
        for spec in template["Resources"].values()
        if spec["Type"] == "AWS::Athena::NamedQuery"
    ]

    assert len(queries) >= 3
    for query in queries:
        assert query["WorkGroup"] == {"Ref": "HistoryWorkGroup"}
        assert query["Database"] == {"Ref": "HistoryDatabase"}
        assert "FROM plan_item_history" in query["QueryString"]  # unqualified
        assert "snapshot_date >=" in query["QueryString"]  # prunes partitions in Athena
        assert "plan_id =" not in query["QueryString"]  # every plan, none named


def statements(template: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    document = resource(template, name)["PolicyDocument"]
    return {s["Sid"]: s for s in document["Statement"]}


def test_the_analyst_policy_reaches_the_history_and_nothing_else(
    template: dict[str, Any],
) -> None:
    granted = statements(template, "HistoryAnalystPolicy")
    resources = [
        r
        for sid, s in granted.items()
        if sid != "ListAthenaWorkGroupsAndCatalogs"
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    text = repr(resources)

    assert all(s["Effect"] == "Allow" for s in granted.values())
    assert "'*'" not in text  # only the List actions, which take no resource, have "*"
    assert granted["ListAthenaWorkGroupsAndCatalogs"]["Resource"] == "*"
    assert sorted(granted["ListAthenaWorkGroupsAndCatalogs"]["Action"]) == [
        "athena:ListDataCatalogs",
        "athena:ListEngineVersions",
        "athena:ListWorkGroups",
    ]
    assert "backups/" not in text
    assert "templates/" not in text
    assert granted["ReadTheHistoryFiles"]["Resource"] == {
        "Fn::Sub": "${BackupBucket.Arn}/history/*"
    }
    assert granted["ListOnlyTheHistory"]["Condition"] == {
        "StringLike": {"s3:prefix": ["history/", "history/*"]}
    }
    assert granted["RunQueriesInTheHistoryWorkGroup"]["Resource"]["Fn::Sub"].endswith(
        ":workgroup/${HistoryWorkGroup}"
    )
    # What Athena's guide lists for listing and reading the catalog: the history table,
    # and the default database's definition (no more of it).
    glue = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}"
    table = granted["ReadTheHistoryTable"]
    assert {
        "glue:GetDatabase",
        "glue:GetDatabases",
        "glue:GetTable",
        "glue:GetTables",
        "glue:GetPartition",
        "glue:GetPartitions",
    } <= set(table["Action"])
    assert {"Fn::Sub": f"{glue}:catalog"} in table["Resource"]
    default = granted["OpenTheDefaultDatabase"]
    assert sorted(default["Action"]) == ["glue:GetDatabase", "glue:GetDatabases"]
    assert default["Resource"] == [
        {"Fn::Sub": f"{glue}:catalog"},
        {"Fn::Sub": f"{glue}:database/default"},
    ]
    assert granted["LocateTheBuckets"]["Action"] == "s3:GetBucketLocation"
    for action in ("athena:CreateWorkGroup", "athena:DeleteWorkGroup", "glue:UpdateTable"):
        assert all(action not in repr(s["Action"]) for s in granted.values())
    assert template["Outputs"]["HistoryAnalystPolicyArn"]["Value"] == {
        "Ref": "HistoryAnalystPolicy"
    }


def test_the_export_function_may_write_history_and_it_keeps_its_own_lifecycle(
    template: dict[str, Any],
) -> None:
    writer = resource(template, "HistoryWriterPolicy")
    assert writer["Roles"] == [{"Ref": "ExportFunctionRole"}]
    [statement] = writer["PolicyDocument"]["Statement"]
    assert statement["Resource"] == {"Fn::Sub": "${BackupBucket.Arn}/history/*"}
    rules = {
        r["Id"]: r for r in resource(template, "BackupBucket")["LifecycleConfiguration"]["Rules"]
    }
    # Every rule is limited to its prefix, so the backups' shorter expiration never
    # reaches history/ (S3 applies the shortest of the rules that match an object).
    assert {r.get("Prefix") for r in rules.values()} == {"backups/", "templates/", "history/"}
    assert rules["keep-plan-history"]["ExpirationInDays"] == {"Ref": "HistoryRetentionDays"}
    assert template["Parameters"]["HistoryRetentionDays"]["Default"] >= 365


def test_duckdb_is_a_development_dependency_never_in_the_layer() -> None:
    layer = (ROOT / "shared" / "requirements.txt").read_text().lower()
    development = (ROOT / "requirements-dev.txt").read_text().lower()

    assert "duckdb" not in layer
    assert "fsspec" not in layer
    assert "\nduckdb==" in development
