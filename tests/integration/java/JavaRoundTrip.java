// A plain Java Kafka client, configured only by a client.properties file as the MSK docs
// show: produces one record to a topic and reads it back. Used by the integration tests
// to prove that the generated JKS stores and properties files work for Java users.
import java.io.FileInputStream;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class JavaRoundTrip {
    public static void main(String[] args) throws Exception {
        String producerProps = args[0], consumerProps = args[1], topic = args[2], group = args[3];
        String key = args[4], value = args[5];
        Properties p = load(producerProps);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("acks", "all");
        RecordMetadata meta;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            meta = producer.send(new ProducerRecord<>(topic, key, value)).get();
        }
        Properties c = load(consumerProps);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        c.put("group.id", group);
        c.put("enable.auto.commit", "false");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            TopicPartition tp = new TopicPartition(topic, meta.partition());
            consumer.assign(List.of(tp));
            consumer.seek(tp, meta.offset());
            long deadline = System.currentTimeMillis() + 20_000;
            while (System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    System.out.println("partition=" + r.partition() + " offset=" + r.offset()
                        + " key=" + r.key() + " value=" + r.value());
                    return;
                }
            }
        }
        System.err.println("record not consumed within 20s");
        System.exit(2);
    }

    private static Properties load(String path) throws Exception {
        Properties props = new Properties();
        try (FileInputStream in = new FileInputStream(path)) {
            props.load(in);
        }
        return props;
    }
}
