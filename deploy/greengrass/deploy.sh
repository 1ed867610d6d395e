#!/usr/bin/env bash
# Deploy the sortcore lambda to an existing AWS IoT Greengrass v1 group (the DeepLens's).
#
# HISTORICAL: AWS discontinued Greengrass V1 on 7 Oct 2026 (groups and deployments can
# no longer be reached) and Lambda no longer creates python3.7 functions, so this script
# cannot succeed today. Kept as the record of the DeepLens deployment; for a current
# device see deploy/linux/ and deploy/greengrass-v2/ (docs/linux.md, docs/greengrass-v2.md).
#
# Steps: build the zip -> create or update the Lambda function -> publish a
# version -> point the alias at it -> new function, subscription and resource
# definitions (with their initial versions) -> a new group version that keeps
# the group's core, device and logger definitions -> a deployment.
#
# Required:  GROUP_ID   the Greengrass group id (aws greengrass list-groups)
#            ROLE_ARN   the Lambda execution role (any role Lambda may assume;
#                       on the device the group role applies)
# Optional:  AWS_REGION (default us-east-1), FUNCTION_NAME, ALIAS, ZIP, MODEL_DIR,
#            SKIP_BUILD=1 to upload an existing $ZIP.
#            FUNCTION_NAME defaults to deeplens-sortcore: the DeepLens service role's
#            policy (AWSDeepLensServiceRolePolicy) only covers functions named deeplens*.
#
# Note: the new group version REPLACES the group's function, subscription and
# resource definitions; the core, device, logger and connector definitions are
# carried over from the group's current version. On a DeepLens that removes a project deployed from the
# DeepLens console; merge definitions by hand if you need both.
# Never run in this repository's CI: it needs AWS credentials and a device.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${GROUP_ID:?set GROUP_ID to the Greengrass group id}"
: "${ROLE_ARN:?set ROLE_ARN to the Lambda execution role ARN}"
AWS_REGION=${AWS_REGION:-us-east-1}
FUNCTION_NAME=${FUNCTION_NAME:-deeplens-sortcore}
ALIAS=${ALIAS:-live}
ZIP=${ZIP:-dist/sock-lambda.zip}
MODEL_DIR=${MODEL_DIR:-model}
HANDLER=sock_lambda.function_handler
RUNTIME=python3.7
HERE=deploy/greengrass
export AWS_DEFAULT_REGION=$AWS_REGION

aws_text() { aws "$@" --output text; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "== building $ZIP" >&2
    .venv/bin/sortcore package-lambda --out "$ZIP" --model "$MODEL_DIR"
fi

echo "== lambda function $FUNCTION_NAME" >&2
if aws lambda get-function --function-name "$FUNCTION_NAME" >/dev/null 2>&1; then
    aws lambda update-function-code --function-name "$FUNCTION_NAME" --zip-file "fileb://$ZIP" >/dev/null
    aws lambda wait function-updated --function-name "$FUNCTION_NAME"
else
    aws lambda create-function --function-name "$FUNCTION_NAME" --runtime "$RUNTIME" \
        --handler "$HANDLER" --role "$ROLE_ARN" --timeout 25 --memory-size 1024 \
        --zip-file "fileb://$ZIP" >/dev/null
    aws lambda wait function-active --function-name "$FUNCTION_NAME"
fi
VERSION=$(aws_text lambda publish-version --function-name "$FUNCTION_NAME" --query Version)
if aws lambda get-alias --function-name "$FUNCTION_NAME" --name "$ALIAS" >/dev/null 2>&1; then
    aws lambda update-alias --function-name "$FUNCTION_NAME" --name "$ALIAS" --function-version "$VERSION" >/dev/null
else
    aws lambda create-alias --function-name "$FUNCTION_NAME" --name "$ALIAS" --function-version "$VERSION" >/dev/null
fi
FUNCTION_ARN=$(aws_text lambda get-alias --function-name "$FUNCTION_NAME" --name "$ALIAS" --query AliasArn)
echo "   version $VERSION, alias $FUNCTION_ARN" >&2

# The JSON files name the function as @FUNCTION_ARN@; fill it in.
render() { sed "s|@FUNCTION_ARN@|$FUNCTION_ARN|g" "$HERE/$1"; }

echo "== Greengrass definitions" >&2
FUNCTION_DEF=$(aws_text greengrass create-function-definition \
    --cli-input-json "$(render function-definition.json)" --query LatestVersionArn)
SUBSCRIPTION_DEF=$(aws_text greengrass create-subscription-definition \
    --cli-input-json "$(render subscription-definition.json)" --query LatestVersionArn)
RESOURCE_DEF=$(aws_text greengrass create-resource-definition \
    --cli-input-json "$(render resource-definition.json)" --query LatestVersionArn)

echo "== group $GROUP_ID" >&2
CURRENT=$(aws_text greengrass get-group --group-id "$GROUP_ID" --query LatestVersion)
# Everything this script does not replace is passed on, or the new version would drop it.
read -r CORE_DEF DEVICE_DEF LOGGER_DEF CONNECTOR_DEF < <(aws_text greengrass get-group-version \
    --group-id "$GROUP_ID" --group-version-id "$CURRENT" \
    --query 'Definition.[CoreDefinitionVersionArn, DeviceDefinitionVersionArn, LoggerDefinitionVersionArn, ConnectorDefinitionVersionArn]')
optional=()
[ "$DEVICE_DEF" != None ] && optional+=(--device-definition-version-arn "$DEVICE_DEF")
[ "$LOGGER_DEF" != None ] && optional+=(--logger-definition-version-arn "$LOGGER_DEF")
[ "$CONNECTOR_DEF" != None ] && optional+=(--connector-definition-version-arn "$CONNECTOR_DEF")
GROUP_VERSION=$(aws_text greengrass create-group-version --group-id "$GROUP_ID" \
    --core-definition-version-arn "$CORE_DEF" \
    --function-definition-version-arn "$FUNCTION_DEF" \
    --subscription-definition-version-arn "$SUBSCRIPTION_DEF" \
    --resource-definition-version-arn "$RESOURCE_DEF" \
    ${optional[@]+"${optional[@]}"} --query Version)

echo "== deploying group version $GROUP_VERSION" >&2
DEPLOYMENT=$(aws_text greengrass create-deployment --group-id "$GROUP_ID" \
    --group-version-id "$GROUP_VERSION" --deployment-type NewDeployment --query DeploymentId)
echo "deployment $DEPLOYMENT started; follow it with:" >&2
echo "  aws greengrass get-deployment-status --group-id $GROUP_ID --deployment-id $DEPLOYMENT" >&2
