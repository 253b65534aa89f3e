"""The stack's data resources, created on moto from template.yaml itself.

Buckets (with versioning and their S3-to-SQS notifications), queues (with redrive policies),
tables, topics and the API key secret are made from the template's own properties, and the
functions' environments are resolved from it, so the demo and the tests cannot drift from
what ``sam deploy`` would create. Functions, roles, alarms and dashboards have no local
counterpart and are skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from achieveit_sandbox.cloudformation import Resolver, load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@dataclass
class LocalStack:
    session: Any
    parameters: dict[str, str] = field(default_factory=dict)
    stack_name: str = "achieveit-sync-local"
    template_path: Path = TEMPLATE
    resolver: Resolver = field(init=False)

    def __post_init__(self) -> None:
        template = load_template(self.template_path)
        self.resolver = Resolver(
            template,
            dict(self.parameters),
            region=self.session.region_name or "us-east-1",
            stack_name=self.stack_name,
        )

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.resolver.template["Resources"])

    def create(self) -> LocalStack:
        for logical_id in self._queues_in_dependency_order():
            self._create_queue(logical_id)
        for logical_id, resource in self.resources.items():
            if not self._wanted(resource):
                continue
            kind = resource["Type"]
            if kind == "AWS::SNS::Topic":
                arn = self.session.client("sns").create_topic(
                    Name=f"{self.stack_name}-{logical_id}"
                )["TopicArn"]
                self.resolver.physical[logical_id] = arn
            elif kind == "AWS::DynamoDB::Table":
                self._create_table(logical_id, resource["Properties"])
            elif kind == "AWS::SecretsManager::Secret":
                properties = self.resolver.resolve(resource["Properties"])
                arn = self.session.client("secretsmanager").create_secret(
                    Name=properties["Name"], SecretString=properties["SecretString"]
                )["ARN"]
                self.resolver.physical[logical_id] = arn
        for logical_id, resource in self.resources.items():
            if resource["Type"] == "AWS::S3::Bucket" and self._wanted(resource):
                self._create_bucket(logical_id, resource["Properties"])
        return self

    def physical_id(self, logical_id: str) -> str:
        return self.resolver.physical[logical_id]

    def function_environment(self, logical_id: str) -> dict[str, str]:
        return self.resolver.function_environment(logical_id)

    # -- resource kinds -------------------------------------------------------------------

    def _wanted(self, resource: dict[str, Any]) -> bool:
        condition = resource.get("Condition")
        return condition is None or self.resolver.condition(condition)

    def _queues_in_dependency_order(self) -> list[str]:
        queues = [name for name, r in self.resources.items() if r["Type"] == "AWS::SQS::Queue"]
        # Dead-letter queues first: the others' redrive policies name them.
        return sorted(queues, key=lambda n: "RedrivePolicy" in self.resources[n]["Properties"])

    def _create_queue(self, logical_id: str) -> None:
        properties = self.resources[logical_id]["Properties"]
        attributes = {}
        for name in ("VisibilityTimeout", "MessageRetentionPeriod"):
            if name in properties:
                attributes[name] = str(properties[name])
        if "RedrivePolicy" in properties:
            redrive = self.resolver.resolve(properties["RedrivePolicy"])
            attributes["RedrivePolicy"] = json.dumps({k: str(v) for k, v in redrive.items()})
        sqs = self.session.client("sqs")
        url = sqs.create_queue(QueueName=f"{self.stack_name}-{logical_id}", Attributes=attributes)[
            "QueueUrl"
        ]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.resolver.physical[logical_id] = url
        self.resolver.attributes[(logical_id, "Arn")] = arn
        self.resolver.attributes[(logical_id, "QueueName")] = arn.rsplit(":", 1)[-1]

    def _create_table(self, logical_id: str, properties: dict[str, Any]) -> None:
        name = f"{self.stack_name}-{logical_id}"
        self.session.client("dynamodb").create_table(
            TableName=name,
            BillingMode=properties.get("BillingMode", "PAY_PER_REQUEST"),
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
        )
        self.resolver.physical[logical_id] = name
        self.resolver.attributes[(logical_id, "Arn")] = (
            f"arn:aws:dynamodb:{self.resolver.region}:{self.resolver.account}:table/{name}"
        )

    def _create_bucket(self, logical_id: str, properties: dict[str, Any]) -> None:
        s3 = self.session.client("s3")
        if "BucketName" in properties:
            name = str(self.resolver.resolve(properties["BucketName"]))
        else:
            name = f"{self.stack_name}-{logical_id}".lower()
        s3.create_bucket(Bucket=name)
        self.resolver.physical[logical_id] = name
        self.resolver.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"
        versioning = properties.get("VersioningConfiguration", {}).get("Status")
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
        queues = properties.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        if queues:
            s3.put_bucket_notification_configuration(
                Bucket=name,
                NotificationConfiguration={
                    "QueueConfigurations": [self._queue_notification(q) for q in queues]
                },
            )

    def _queue_notification(self, configuration: dict[str, Any]) -> dict[str, Any]:
        notification: dict[str, Any] = {
            "QueueArn": self.resolver.resolve(configuration["Queue"]),
            "Events": [configuration["Event"]],
        }
        rules = configuration.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        if rules:
            notification["Filter"] = {
                "Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}
            }
        return notification
